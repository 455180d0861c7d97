#include "internal.h"

#define KP_STR2(x) #x
#define KP_STR(x) KP_STR2(x)

const char *kp_version(void)
{
    return KP_STR(KP_VERSION_MAJOR) "." KP_STR(KP_VERSION_MINOR) "." KP_STR(KP_VERSION_PATCH);
}

int kp_version_number(void) { return KP_VERSION_NUMBER; }

// A C++ program built against the installed libkuiper with pkg-config flags only: the public
// header must work from C++ (extern "C", no C-only constructs).
#include <string>

#include "consumer.h"

int main(int argc, char **argv)
{
    const std::string version = kp_version();
    if (version.empty())
        return 1;
    return consumer_main(argc, argv, "C++");
}

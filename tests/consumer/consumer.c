/* A C program built against the installed libkuiper with pkg-config flags only. */
#include "consumer.h"

int main(int argc, char **argv)
{
    return consumer_main(argc, argv, "C");
}

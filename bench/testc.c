/* The compiled module: answers "Test", like the one-line shell script. */
#include <unistd.h>
int main(void) { return write(1, "Test", 4) == 4 ? 0 : 1; }

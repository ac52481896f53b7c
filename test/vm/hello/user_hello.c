// SPDX-License-Identifier: GPL-2.0
/*
 * user_hello - a dynamically linked program (libc + libm) that
 * test/vm/selftest.sh runs inside the VM to prove that lake-vm.sh brings
 * shared libraries along.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	double x = argc > 1 ? strtod(argv[1], NULL) : 2.0;

	printf("user_hello: sqrt(%g)=%.6f\n", x, sqrt(x));
	return 0;
}

/* Prints the SIMD levels this build and CPU support, one per line, for
 * `make test` to run the suite once per level. */
#include <stdio.h>

#include "ivfpq.h"

int main(void)
{
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++)
        if (ivfpq_simd_supported((ivfpq_simd_level)l)) printf("%s\n", ivfpq_simd_name((ivfpq_simd_level)l));
    return 0;
}

/* What examples/gen_index.c generates and examples/search_const.c uses. */
#ifndef EXAMPLE_H
#define EXAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define EXAMPLE_D 16
#define EXAMPLE_FACTORY "IVF16,PQ8x4fs,RFlat"
#define EXAMPLE_NQ 8
#define EXAMPLE_K 5
#define EXAMPLE_NPROBE 4

extern const size_t example_index_len;
extern const unsigned char example_index[];          /* native image, 64-byte aligned */
extern const float example_queries[EXAMPLE_NQ * EXAMPLE_D];
extern const int64_t example_labels[EXAMPLE_NQ * EXAMPLE_K];   /* what the host found */
extern const float example_distances[EXAMPLE_NQ * EXAMPLE_K];

#endif

/*
 * Fuzz target: the factory-string parser. Any input either creates an
 * index whose canonical string parses back to the same index, or fails
 * with IVFPQ_E_PARSE / IVFPQ_E_INVALID_ARG and exactly one logged message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_msgs;
static void count(void *user, int level, int status, const char *msg)
{
    (void)user;
    (void)status;
    if (level == IVFPQ_LOG_ERROR && msg && msg[0]) g_msgs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 400) return 0;
    int d = 1 + (int)(((unsigned)data[0] << 8 | data[1]) % 1024);
    char spec[400];
    memcpy(spec, data + 2, size - 2);
    spec[size - 2] = '\0';
    ivfpq_options opt = {0};
    opt.log = count;
    g_msgs = 0;
    ivfpq_index *idx = NULL;
    int rc = ivfpq_index_factory(&idx, d, spec, IVFPQ_METRIC_L2, &opt);
    if (rc != IVFPQ_OK) {
        if (idx || g_msgs != 1 || (rc != IVFPQ_E_PARSE && rc != IVFPQ_E_INVALID_ARG && rc != IVFPQ_E_NOMEM))
            abort();
        return 0;
    }
    ivfpq_info a, b;
    ivfpq_get_info(idx, &a);
    ivfpq_index *again = NULL;
    if (ivfpq_index_factory(&again, d, a.factory, IVFPQ_METRIC_L2, NULL) != IVFPQ_OK) abort();
    ivfpq_get_info(again, &b);
    if (a.kind != b.kind || a.nlist != b.nlist || a.M != b.M || a.by_residual != b.by_residual ||
        a.refine != b.refine || strcmp(a.factory, b.factory) != 0)
        abort();
    ivfpq_free(again);
    ivfpq_free(idx);
    return 0;
}

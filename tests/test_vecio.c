/* Vector file formats of the tools: every format read back from bytes
 * written here by hand, and every malformed file refused with one line
 * naming the file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vecio.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void put_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void le32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* A .npy file of the given version, descr, shape text; `data` of `nbytes`;
 * `cut` bytes removed from the end. */
static void put_npy(const char *path, int version, const char *descr, const char *fortran,
                    const char *shape, const void *data, size_t nbytes, size_t cut)
{
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                      fortran, shape);
    size_t pre = version == 1 ? 10 : 12;
    size_t hlen = (size_t)dl + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    size_t total = pre + hlen + nbytes;
    unsigned char *b = calloc(1, total);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    if (version == 1) {
        b[8] = (unsigned char)hlen;
        b[9] = (unsigned char)(hlen >> 8);
    } else {
        le32(b + 8, (uint32_t)hlen);
    }
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, (size_t)dl);
    b[pre + hlen - 1] = '\n';
    memcpy(b + pre + hlen, data, nbytes);
    put_bytes(path, b, total - cut);
    free(b);
}

static float vals[6 * 5];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ivfpq-test-vecio-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    for (int i = 0; i < 30; i++) vals[i] = (float)i * 0.5f - 3.25f;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void expect_floats(const char *path, size_t n, size_t d, const float *want)
{
    vec_matrix m;
    char err[512] = "";
    int rc = vec_read_float(path, &m, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(m.n, n);
    assert_int_equal(m.d, d);
    assert_int_equal(m.type, VEC_FLOAT32);
    assert_memory_equal(m.data, want, n * d * sizeof(float));
    vec_free(&m);
}

static void npy_versions(void **state)
{
    (void)state;
    for (int v = 1; v <= 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "v%d.npy", v);
        put_npy(tpath(name), v, "<f4", "False", "(6, 5)", vals, sizeof vals, 0);
        expect_floats(tpath(name), 6, 5, vals);
    }
    /* no extension: recognised by the magic */
    put_npy(tpath("features"), 1, "<f4", "False", "(6, 5)", vals, sizeof vals, 0);
    expect_floats(tpath("features"), 6, 5, vals);
    /* 1-D is one row */
    put_npy(tpath("row.npy"), 1, "<f4", "False", "(5,)", vals, 5 * 4, 0);
    expect_floats(tpath("row.npy"), 1, 5, vals);
}

static void texmex_and_bin(void **state)
{
    (void)state;
    unsigned char b[6 * (4 + 20)];
    for (int i = 0; i < 6; i++) {
        le32(b + i * 24, 5);
        memcpy(b + i * 24 + 4, vals + i * 5, 20);
    }
    put_bytes(tpath("a.fvecs"), b, sizeof b);
    expect_floats(tpath("a.fvecs"), 6, 5, vals);

    unsigned char fb[8 + sizeof vals];
    le32(fb, 6);
    le32(fb + 4, 5);
    memcpy(fb + 8, vals, sizeof vals);
    put_bytes(tpath("a.fbin"), fb, sizeof fb);
    expect_floats(tpath("a.fbin"), 6, 5, vals);

    /* uint8 formats become floats */
    unsigned char bv[3 * (4 + 4)], u8[8 + 12];
    float want[12];
    le32(u8, 3);
    le32(u8 + 4, 4);
    for (int i = 0; i < 3; i++) {
        le32(bv + i * 8, 4);
        for (int j = 0; j < 4; j++) {
            unsigned char x = (unsigned char)(i * 80 + j * 7);
            bv[i * 8 + 4 + j] = x;
            u8[8 + i * 4 + j] = x;
            want[i * 4 + j] = (float)x;
        }
    }
    put_bytes(tpath("a.bvecs"), bv, sizeof bv);
    expect_floats(tpath("a.bvecs"), 3, 4, want);
    put_bytes(tpath("a.u8bin"), u8, sizeof u8);
    expect_floats(tpath("a.u8bin"), 3, 4, want);

    /* ids */
    int32_t ids[4 * 3];
    for (int i = 0; i < 12; i++) ids[i] = i * 1000 - 1;
    unsigned char iv[4 * 16], ib[8 + 48];
    for (int i = 0; i < 4; i++) {
        le32(iv + i * 16, 3);
        memcpy(iv + i * 16 + 4, ids + i * 3, 12);
    }
    le32(ib, 4);
    le32(ib + 4, 3);
    memcpy(ib + 8, ids, 48);
    put_bytes(tpath("a.ivecs"), iv, sizeof iv);
    put_bytes(tpath("a.ibin"), ib, sizeof ib);
    int64_t ids64[12];
    for (int i = 0; i < 12; i++) ids64[i] = ids[i];
    put_npy(tpath("ids.npy"), 1, "<i8", "False", "(4, 3)", ids64, sizeof ids64, 0);
    const char *files[] = {tpath("a.ivecs"), tpath("a.ibin"), tpath("ids.npy")};
    for (int f = 0; f < 3; f++) {
        vec_matrix m;
        char err[512];
        assert_int_equal(vec_read_int(files[f], &m, err, sizeof err), VEC_OK);
        assert_int_equal(m.n, 4);
        assert_int_equal(m.d, 3);
        assert_memory_equal(m.data, ids, sizeof ids);
        vec_free(&m);
    }
}

/* Directory: *.npy only, sorted by name, whatever the creation order. */
static void directory_of_npy(void **state)
{
    (void)state;
    mkdir(tpath("dir"), 0755);
    put_npy(tpath("dir/b.npy"), 1, "<f4", "False", "(2, 5)", vals + 10, 40, 0);
    put_npy(tpath("dir/a.npy"), 2, "<f4", "False", "(2, 5)", vals, 40, 0);
    put_npy(tpath("dir/c.npy"), 1, "<f4", "False", "(2, 5)", vals + 20, 40, 0);
    put_bytes(tpath("dir/notes.txt"), "hello", 5);
    put_bytes(tpath("dir/.hidden.npy"), "junk", 4);
    expect_floats(tpath("dir"), 6, 5, vals);
}

static void writers_round_trip(void **state)
{
    (void)state;
    const char *fl[] = {"w.fvecs", "w.fbin", "w.npy"};
    for (int i = 0; i < 3; i++) {
        char err[512];
        assert_int_equal(vec_write(tpath(fl[i]), VEC_FLOAT32, vals, 6, 5, err, sizeof err), VEC_OK);
        expect_floats(tpath(fl[i]), 6, 5, vals);
    }
    int32_t ids[6] = {5, -1, 7, 0, 2147483647, 3};
    const char *il[] = {"w.ivecs", "w.ibin", "w2.npy"};
    for (int i = 0; i < 3; i++) {
        char err[512];
        vec_matrix m;
        assert_int_equal(vec_write(tpath(il[i]), VEC_INT32, ids, 2, 3, err, sizeof err), VEC_OK);
        assert_int_equal(vec_read_int(tpath(il[i]), &m, err, sizeof err), VEC_OK);
        assert_int_equal(m.n, 2);
        assert_int_equal(m.d, 3);
        assert_memory_equal(m.data, ids, sizeof ids);
        vec_free(&m);
    }
    char err[512];
    assert_int_equal(vec_write(tpath("w.ivecs"), VEC_FLOAT32, vals, 6, 5, err, sizeof err), VEC_E_WRITE);
}

/* A refused file: an error code, one line, naming the file and `what`. */
static void expect_error(const char *path, int ids, const char *what)
{
    vec_matrix m;
    char err[512] = "";
    int rc = ids ? vec_read_int(path, &m, err, sizeof err) : vec_read_float(path, &m, err, sizeof err);
    assert_int_equal(rc, VEC_E_INPUT);
    assert_null(m.data);
    assert_null(strchr(err, '\n'));
    assert_true(strncmp(err, path, strlen(path)) == 0);
    if (!strstr(err, what)) fail_msg("message \"%s\" lacks \"%s\"", err, what);
}

static void malformed_files(void **state)
{
    (void)state;
    expect_error(tpath("missing.npy"), 0, "cannot open");
    double dv[10] = {0};
    put_npy(tpath("f8.npy"), 1, "<f8", "False", "(2, 5)", dv, sizeof dv, 0);
    expect_error(tpath("f8.npy"), 0, "'<f8' (float64) is not float32");
    put_npy(tpath("f2.npy"), 1, "<f2", "False", "(2, 5)", dv, 20, 0);
    expect_error(tpath("f2.npy"), 0, "float16");
    put_npy(tpath("u1.npy"), 1, "|u1", "False", "(2, 5)", dv, 10, 0);
    expect_error(tpath("u1.npy"), 0, "uint8");
    put_npy(tpath("fortran.npy"), 1, "<f4", "True", "(6, 5)", vals, sizeof vals, 0);
    expect_error(tpath("fortran.npy"), 0, "fortran_order");
    put_npy(tpath("3d.npy"), 1, "<f4", "False", "(3, 2, 5)", vals, sizeof vals, 0);
    expect_error(tpath("3d.npy"), 0, "bad shape (3, 2, 5)");
    put_npy(tpath("trunc.npy"), 1, "<f4", "False", "(6, 5)", vals, sizeof vals, 7);
    expect_error(tpath("trunc.npy"), 0, "truncated at byte 241: shape (6, 5) of float32 needs 248 bytes");
    put_npy(tpath("long.npy"), 3, "<f4", "False", "(5, 5)", vals, sizeof vals, 0);
    expect_error(tpath("long.npy"), 0, "20 unexpected bytes");
    put_bytes(tpath("magic.npy"), "PK\3\4 not numpy at all", 22);
    expect_error(tpath("magic.npy"), 0, "wrong magic");
    put_bytes(tpath("hdr.npy"), "\x93NUMPY\1\0\x40\0{'descr'", 18);
    expect_error(tpath("hdr.npy"), 0, "truncated at byte 18 inside the header");
    const char lfs[] = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 1234\n";
    put_bytes(tpath("lfs.npy"), lfs, sizeof lfs - 1);
    expect_error(tpath("lfs.npy"), 0, "Git LFS pointer");
    put_bytes(tpath("lfs.fvecs"), lfs, sizeof lfs - 1);
    expect_error(tpath("lfs.fvecs"), 0, "Git LFS pointer");

    unsigned char b[2 * 24] = {0};
    le32(b, 5);
    le32(b + 24, 4);
    put_bytes(tpath("rows.fvecs"), b, sizeof b);
    expect_error(tpath("rows.fvecs"), 0, "row 1 (byte 24) has d = 4");
    put_bytes(tpath("cut.fvecs"), b, 30);
    expect_error(tpath("cut.fvecs"), 0, "truncated at byte 30");
    put_bytes(tpath("empty.fvecs"), b, 0);
    expect_error(tpath("empty.fvecs"), 0, "empty file");
    unsigned char fb[8 + 20] = {0};
    le32(fb, 2);
    le32(fb + 4, 5);
    put_bytes(tpath("cut.fbin"), fb, sizeof fb);
    expect_error(tpath("cut.fbin"), 0, "truncated at byte 28");
    put_bytes(tpath("data.csv"), "1,2,3\n", 6);
    expect_error(tpath("data.csv"), 0, "unknown file type");
    put_npy(tpath("floats-as-ids.npy"), 1, "<f4", "False", "(6, 5)", vals, sizeof vals, 0);
    expect_error(tpath("floats-as-ids.npy"), 1, "is not int32");
    expect_error(tpath("a.ivecs"), 0, "int32 ids, not float vectors");

    /* directories: d mismatch names the offending file; no .npy at all */
    mkdir(tpath("mix"), 0755);
    put_npy(tpath("mix/utt1.npy"), 1, "<f4", "False", "(2, 5)", vals, 40, 0);
    put_npy(tpath("mix/utt2.npy"), 1, "<f4", "False", "(2, 4)", vals, 32, 0);
    vec_matrix m;
    char err[512];
    assert_int_equal(vec_read_float(tpath("mix"), &m, err, sizeof err), VEC_E_INPUT);
    assert_non_null(strstr(err, "mix/utt2.npy: d = 4, but utt1.npy has d = 5"));
    mkdir(tpath("none"), 0755);
    expect_error(tpath("none"), 0, "no .npy files");
    mkdir(tpath("baddir"), 0755);
    put_npy(tpath("baddir/x.npy"), 1, "<f8", "False", "(2, 5)", dv, 80, 0);
    assert_int_equal(vec_read_float(tpath("baddir"), &m, err, sizeof err), VEC_E_INPUT);
    assert_non_null(strstr(err, "baddir/x.npy: dtype '<f8'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_versions),     cmocka_unit_test(texmex_and_bin),
        cmocka_unit_test(directory_of_npy), cmocka_unit_test(writers_round_trip),
        cmocka_unit_test(malformed_files),
    };
    return cmocka_run_group_tests_name("vecio", tests, setup, teardown);
}

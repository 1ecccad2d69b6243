// Side by side with faiss, interleaved: libivfpq (avx512 and avx2 paths) and
// faiss on the same IVF1024,PQ128x4fs,RFlat search, one thread, k = 10,
// k_factor 4, all queries in one batch, at nprobe 1, 4, 16 and 64.
//
// Not built by the Makefile: it needs a faiss you built yourself, outside
// this tree (bench/RESULTS.md has the commands), e.g.
//
//   g++ -O2 -std=c++17 -fopenmp -I$FAISS -Iinclude bench/faiss_side_by_side.cpp
//       $FAISS/build/faiss/libfaiss_avx512.a build/libivfpq.a -lopenblas -lm -o /tmp/sbs
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 /tmp/sbs DATA faiss.index
//       ivfpq.index [rounds] [min_seconds]
//
// DATA holds query.fvecs and gt.ivecs (shared/data/make_synth.py); the two
// index files are built beforehand from its base.fvecs (faiss.index by
// faiss::index_factory + write_index, ivfpq.index by bench_search --index).
//
// Why this shape: the host's speed drifts by tens of percent within minutes,
// so two programs run one after the other give ratios that drift too. Here
// each engine lives in its own child process (its own heap and page state:
// in one process the two allocators disturb each other), pinned to the same
// CPU, and the parent asks them in turn for one measurement each (best of
// passes lasting >= min_seconds), rotating the order every nprobe and round.
// Ratios are taken per round, between measurements seconds apart; the table
// gives their median.
#include <faiss/IndexIVF.h>
#include <faiss/IndexRefine.h>
#include <faiss/index_io.h>
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include "ivfpq.h"
}

namespace {

const int kProbes[] = {1, 4, 16, 64};
const char *const kEngine[] = {"faiss", "avx512", "avx2"};
const size_t kK = 10;

double cpu_now()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// .fvecs / .ivecs: per row an int32 dimension, then the row
template <typename T> std::vector<T> read_vecs(const std::string &path, size_t &n, size_t &d)
{
    std::vector<T> v;
    d = 0;
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path.c_str());
        exit(1);
    }
    int32_t dd;
    n = 0;
    while (fread(&dd, 4, 1, f) == 1) {
        d = (size_t)dd;
        size_t o = v.size();
        v.resize(o + d);
        if (fread(v.data() + o, sizeof(T), d, f) != d) exit(1);
        n++;
    }
    fclose(f);
    return v;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Reply { double qps, recall; };

// The child's loop: read an nprobe, answer with QPS and 10-R@10.
[[noreturn]] void serve(int e, int in, int out, const char *faiss_path, const char *ivfpq_path,
                        const std::vector<float> &xq, size_t nq, const std::vector<int> &gt,
                        size_t dg, double min_time)
{
    faiss::Index *fidx = nullptr;
    faiss::IndexIVF *fivf = nullptr;
    ivfpq_index *me = nullptr;
    if (e == 0) {
        fidx = faiss::read_index(faiss_path);
        auto *rf = dynamic_cast<faiss::IndexRefine *>(fidx);
        if (!rf || !(fivf = dynamic_cast<faiss::IndexIVF *>(rf->base_index))) _exit(2);
        rf->k_factor = 4;
    } else {
        int rc = ivfpq_load_file(&me, ivfpq_path, 0, nullptr);
        if (!rc) rc = ivfpq_simd_force(e == 1 ? IVFPQ_SIMD_AVX512 : IVFPQ_SIMD_AVX2);
        if (rc) {
            fprintf(stderr, "%s: %s\n", kEngine[e], ivfpq_strerror(rc));
            _exit(2);
        }
    }
    std::vector<float> D(nq * kK);
    std::vector<faiss::idx_t> I(nq * kK);
    std::vector<int64_t> L(nq * kK);
    int np;
    while (read(in, &np, sizeof np) == (ssize_t)sizeof np) {
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = (size_t)np;
        p.k_factor = 4;
        if (fivf) fivf->nprobe = (size_t)np;
        double best = 1e30, total = 0;
        for (int passes = 0; passes < 2 || total < min_time; passes++) {
            double t0 = cpu_now();
            if (fidx) fidx->search((faiss::idx_t)nq, xq.data(), kK, D.data(), I.data());
            else if (ivfpq_search(me, nq, xq.data(), kK, &p, D.data(), L.data())) _exit(3);
            double el = cpu_now() - t0;
            total += el;
            best = std::min(best, el);
        }
        size_t hit = 0;
        for (size_t i = 0; i < nq; i++)
            for (size_t a = 0; a < kK; a++)
                for (size_t b = 0; b < kK; b++)
                    hit += (fidx ? I[i * kK + a] : L[i * kK + a]) == gt[i * dg + b];
        Reply r = {nq / best, (double)hit / (double)(nq * kK)};
        if (write(out, &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
    }
    _exit(0);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s DATA faiss.index ivfpq.index [rounds] [min_seconds]\n", argv[0]);
        return 2;
    }
    omp_set_num_threads(1);
    std::string dir = argv[1];
    int rounds = argc > 4 ? atoi(argv[4]) : 7;
    double min_time = argc > 5 ? atof(argv[5]) : 0.15;
    size_t nq = 0, dq = 0, ng = 0, dg = 0;
    auto xq = read_vecs<float>(dir + "/query.fvecs", nq, dq);
    auto gt = read_vecs<int>(dir + "/gt.ivecs", ng, dg);
    if (ng < nq || dg < kK) {
        fprintf(stderr, "gt.ivecs: need %zu rows of >= %zu\n", nq, kK);
        return 1;
    }
    int to[3][2], from[3][2];
    pid_t kid[3];
    for (int e = 0; e < 3; e++) {
        if (pipe(to[e]) || pipe(from[e])) return 1;
        kid[e] = fork();
        if (kid[e] < 0) return 1;
        if (kid[e] == 0) serve(e, to[e][0], from[e][1], argv[2], argv[3], xq, nq, gt, dg, min_time);
    }
    std::map<std::pair<int, int>, std::vector<double>> qps;
    std::map<std::pair<int, int>, double> recall;
    for (int r = 0; r < rounds; r++)
        for (int np : kProbes)
            for (int j = 0; j < 3; j++) {
                int e = (j + r + np) % 3;
                Reply rep;
                if (write(to[e][1], &np, sizeof np) != (ssize_t)sizeof np ||
                    read(from[e][0], &rep, sizeof rep) != (ssize_t)sizeof rep) {
                    fprintf(stderr, "%s: child failed\n", kEngine[e]);
                    for (pid_t k : kid) kill(k, SIGTERM);
                    return 1;
                }
                qps[{e, np}].push_back(rep.qps);
                recall[{e, np}] = rep.recall;
            }
    for (pid_t k : kid) kill(k, SIGTERM);
    while (wait(nullptr) > 0) {}
    printf("| nprobe | 10-R@10 faiss / ours | faiss QPS | avx512 QPS | avx512 / faiss | avx2 QPS "
           "| avx2 / faiss |\n|---:|---|---:|---:|---:|---:|---:|\n");
    for (int np : kProbes) {
        std::vector<double> ra, rb;
        for (int r = 0; r < rounds; r++) {
            ra.push_back(qps[{1, np}][r] / qps[{0, np}][r]);
            rb.push_back(qps[{2, np}][r] / qps[{0, np}][r]);
        }
        printf("| %d | %.3f / %.3f | %.0f | %.0f | %.2f | %.0f | %.2f |\n", np, recall[{0, np}],
               recall[{1, np}], median(qps[{0, np}]), median(qps[{1, np}]), median(ra),
               median(qps[{2, np}]), median(rb));
        fprintf(stderr, "nprobe %d, per-round ratios avx512:", np);
        for (double x : ra) fprintf(stderr, " %.2f", x);
        fprintf(stderr, "; avx2:");
        for (double x : rb) fprintf(stderr, " %.2f", x);
        fprintf(stderr, "\n");
    }
    return 0;
}

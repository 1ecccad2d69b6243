#!/usr/bin/env python3
"""Worst-case stack use of the library's entry points, from GCC's
-fcallgraph-info=su output (one .ci file per object: each function's frame
and its calls). Usage: stack_report.py DIR ENTRY...

The figure of an entry point is the largest sum of frames along any call
chain from it. Indirect calls are resolved to what they can reach inside
the library: from a FastScan kernel, the search's result sink; from the
native saver, its two sinks; from the files that call the dispatch table
(search, blend, dispatch, kmeans, lut, pq4), any of its kernels (the
largest counts, whatever the SIMD level; FastScan ones only from search
and blend); from anywhere else, only the caller's hooks (allocator, log,
progress, read/write callbacks), which are not counted: their own stack
adds to these figures.
The C library's mem* routines (leaves) are not counted either. A recursive
function is reported with its frame per level: its depth is not known here."""
import glob, os, re, sys

node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')

def load(d):
    frame, calls, where = {}, {}, {}
    for f in glob.glob(os.path.join(d, '*.ci')):
        for line in open(f):
            m = node_re.search(line)
            if m:
                title, label = m.groups()
                s = re.search(r'\\n(\d+) bytes \(([a-z,]+)\)', label)
                if s:
                    if s.group(2) == 'dynamic':
                        sys.exit(f'{title}: unbounded dynamic stack')
                    frame[title] = int(s.group(1))
                    where[title] = label.split('\\n')[1].split(':')[0]
                    calls.setdefault(title, set())
                continue
            m = edge_re.search(line)
            if m:
                calls.setdefault(m.group(1), set()).add(m.group(2))
    return frame, calls, where

def main():
    d, entries = sys.argv[1], sys.argv[2:]
    frame, calls, where = load(d)
    # unqualified names of static functions appear qualified by file
    kernels = [t for t in frame if re.search(r'_(scalar|sse|avx2|avx512|neon)$', t)]
    sinks = [t for t in frame if t.endswith(':fs_sink')]
    savers = [t for t in frame if t.endswith((':put_crc', ':put_sink'))]
    memo, recursive = {}, set()

    def indirect(f):
        src = os.path.basename(where.get(f, ''))
        if src.startswith('fastscan_'):
            return sinks
        if src == 'io.c':
            return savers
        if src in ('search.c', 'blend.c'):
            return kernels
        if src in ('dispatch.c', 'kmeans.c', 'lut.c', 'pq4.c'):
            return [k for k in kernels if 'fs_' not in k]  # FastScan runs in search only
        return []  # the caller's hooks and callbacks

    def worst(f, stack):
        if f in memo:
            return memo[f]
        if f in stack:
            recursive.add(f)
            return 0, []
        best, chain = 0, []
        for g in calls.get(f, ()):
            if g == '__indirect_call':
                targets = indirect(f)
            else:
                targets = [g]
            for t in targets:
                if t not in frame:
                    continue  # outside the library (memcpy...) or a hook
                w, c = worst(t, stack + [f])
                if w > best:
                    best, chain = w, c
        memo[f] = (frame.get(f, 0) + best, [f] + chain)
        return memo[f]

    print(f'{"entry point":32} {"bytes":>6}  worst chain (frame bytes)')
    for spec in entries:
        # ENTRY~F~G: the paths of ENTRY that do not go through F or G (e.g.
        # a zero-copy load: ivfpq_load_from_buffer~native_load_copy~...)
        e, *skip = spec.split('~')
        memo.clear()
        for t in frame:
            if any(t.split(':')[-1] == x for x in skip):
                memo[t] = (0, [])
        if e not in frame:
            print(f'{e:32} {"-":>6}  (not in this build)')
            continue
        recursive.clear()
        w, chain = worst(e, [])
        desc = ' > '.join(f'{c.split(":")[-1]}({frame[c]})' for c in chain if c in frame)
        rec = ''.join(f'; plus {frame[r]} per level of recursion in {r.split(":")[-1]}'
                      for r in sorted(recursive))
        name = e + (' (no ' + ', '.join(skip) + ')' if skip else '')
        print(f'{name:32} {w:6}  {desc}{rec}')

main()

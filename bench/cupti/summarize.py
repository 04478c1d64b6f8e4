#!/usr/bin/env python3
"""Summarizes a kernel-trace.c file: the GPU's busy spans (kernels separated by more than --gap ms
of idle), then, over the spans chosen, time by kernel (demangled, templates cut) and memory copies.
  python3 bench/cupti/summarize.py trace.tsv[.gz] [--gap 3] [--spans 5-8] [--top 40]
  python3 bench/cupti/summarize.py trace.tsv --windows windows.json   (bench/bench-kernels.ts's runs)
"""
import argparse, collections, gzip, json, re, statistics, subprocess

ap = argparse.ArgumentParser()
ap.add_argument('trace')
ap.add_argument('--gap', type=float, default=3.0, help='idle milliseconds that end a span')
ap.add_argument('--spans', help='spans to total, e.g. 5-8 or 3,4 (default: all)')
ap.add_argument('--top', type=int, default=40)
ap.add_argument('--windows', help='JSON of {name, run, startNs, endNs}: GPU time of each named run (median over runs after the first)')
ap.add_argument('--min-ms', type=float, default=0, help='list only spans with at least this much kernel time')
a = ap.parse_args()

opener = gzip.open if a.trace.endswith('.gz') else open
events = []
with opener(a.trace, 'rt') as f:
    for line in f:
        kind, start, end, x, y = line.rstrip('\n').split('\t', 4)
        events.append((int(start), int(end), kind, x, y))
events.sort()

names = sorted({e[4] for e in events if e[2] == 'K'})
plain = subprocess.run(['c++filt'], input='\n'.join(names), capture_output=True, text=True).stdout.split('\n')
def short(s):
    # Template arguments and parameter lists make every instance its own name: keep the function.
    s = re.sub(r'\(.*\)$', '', s)
    depth, outs = 0, []
    for ch in s:
        if ch == '<': depth += 1
        elif ch == '>': depth -= 1
        elif depth == 0: outs.append(ch)
    return ''.join(outs).replace('void ', '')
short_of = {n: short(p) for n, p in zip(names, plain)}

if a.windows:
    runs = collections.defaultdict(list)
    for w in json.load(open(a.windows)):
        ks = [e for e in events if e[2] == 'K' and w['startNs'] <= e[0] <= w['endNs']]
        if w['run'] == 0: continue
        detail = collections.Counter()
        for e in ks: detail[short_of[e[4]]] += e[1] - e[0]
        runs[w['name']].append((sum(e[1] - e[0] for e in ks) / 1e6, detail))
    print('| case | GPU ms (median) | kernels |')
    print('| --- | --- | --- |')
    for name, rs in runs.items():
        ms = statistics.median(r[0] for r in rs)
        top = ', '.join(f'{k.split("::")[-1][:40]} {v/1e6/len(rs):.2f}' for k, v in sum((r[1] for r in rs), collections.Counter()).most_common(3))
        print(f'| {name} | {ms:.3f} | {top} |')
    raise SystemExit

spans, cur, last_end = [], [], None
for e in events:
    if last_end is not None and e[0] - last_end > a.gap * 1e6:
        spans.append(cur); cur = []
    cur.append(e)
    last_end = e[1] if last_end is None else max(last_end, e[1])
if cur: spans.append(cur)

t0 = events[0][0]
print(f'{len(spans)} spans (idle > {a.gap} ms ends one)')
print('| span | starts s | wall ms | kernel ms | kernels | copies MB | top kernel |')
print('| --- | --- | --- | --- | --- | --- | --- |')
for i, s in enumerate(spans):
    k = [e for e in s if e[2] == 'K']
    busy = sum(e[1] - e[0] for e in k) / 1e6
    mb = sum(int(e[4]) for e in s if e[2] == 'M') / 1e6
    top = collections.Counter()
    for e in k: top[short_of[e[4]]] += e[1] - e[0]
    if busy < a.min_ms: continue
    name = top.most_common(1)[0][0][:60] if top else ''
    print(f'| {i} | {(s[0][0]-t0)/1e9:.3f} | {(max(e[1] for e in s)-s[0][0])/1e6:.1f} | {busy:.1f} | {len(k)} | {mb:.1f} | {name} |')

chosen = range(len(spans))
if a.spans:
    chosen = []
    for part in a.spans.split(','):
        lo, _, hi = part.partition('-')
        chosen += range(int(lo), int(hi or lo) + 1)
sel = [e for i in chosen for e in spans[i]]
n = len(list(chosen))
by, count = collections.Counter(), collections.Counter()
for e in sel:
    if e[2] == 'K':
        by[short_of[e[4]]] += e[1] - e[0]; count[short_of[e[4]]] += 1
total = sum(by.values())
print(f'\nspans {a.spans or "all"}: kernel time {total/1e6:.1f} ms ({total/1e6/n:.1f} ms a span)')
print('| kernel | ms a span | calls a span | share |')
print('| --- | --- | --- | --- |')
for name, ns in by.most_common(a.top):
    print(f'| {name[:110]} | {ns/1e6/n:.2f} | {count[name]/n:.0f} | {100*ns/total:.1f}% |')
copies = collections.defaultdict(lambda: [0, 0])
for e in sel:
    if e[2] == 'M':
        copies[{'1': 'HtoD', '2': 'DtoH', '8': 'DtoD'}.get(e[3], e[3])][0] += int(e[4])
        copies[{'1': 'HtoD', '2': 'DtoH', '8': 'DtoD'}.get(e[3], e[3])][1] += e[1] - e[0]
for kind, (b, ns) in copies.items():
    print(f'copies {kind}: {b/1e6/n:.1f} MB, {ns/1e6/n:.2f} ms a span ({b/ns if ns else 0:.1f} GB/s)')

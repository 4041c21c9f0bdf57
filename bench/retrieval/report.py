#!/usr/bin/python3
"""Compares hearth with the lexical baselines on the same instances, per split and per language.

  python3 bench/retrieval/report.py --split dev WORK/dev_hearth.json WORK/dev_baselines.json \\
      --split public WORK/public_hearth.json WORK/public_baselines.json

Inputs: run_hearth.py --out and retrieval_eval.py --out files. Only instances that hearth scored
are counted for every method (a tree that could not be indexed drops from all of them). Prints,
per split and pooled: Hit@1 / Hit@5 / MRR overall and per language, and checks issue 18's bars:
hearth above bm25-window in Hit@5 and MRR overall and in every language with >= 20 instances
(pooled), and >= +0.05 Hit@5 over the best of bm25-file / bm25-window overall.
"""
import argparse
import collections
import json

METHODS = ['hearth', 'bm25-file', 'bm25-window']


def load(hearth_path, base_path):
    rows = {}
    for r in json.load(open(hearth_path))['rows']:
        rows[r['id']] = dict(languages=r['languages'], hearth=r['first_rank'])
    for inst in json.load(open(base_path))['instances']:
        if inst['id'] in rows:
            for m in METHODS[1:]:
                rows[inst['id']][m] = inst[m]['first_rank']
    return [r for r in rows.values() if all(m in r for m in METHODS)]


def stats(rows, m):
    n = len(rows)
    if not n:
        return 0, 0, 0, 0
    fr = [r[m] for r in rows]
    return (n, sum(1 for x in fr if x == 1) / n, sum(1 for x in fr if x and x <= 5) / n,
            sum(1.0 / x for x in fr if x) / n)


def table(title, rows):
    print('\n%s\n' % title)
    print('| group | n | ' + ' | '.join('%s Hit@1 / Hit@5 / MRR' % m for m in METHODS) + ' |')
    print('|---|---|' + '---|' * len(METHODS))
    groups = collections.OrderedDict([('all', rows)])
    by = collections.defaultdict(list)
    for r in rows:
        for lang in r['languages']:
            by[lang].append(r)
    for lang, rs in sorted(by.items(), key=lambda kv: -len(kv[1])):
        groups[lang] = rs
    for g, rs in groups.items():
        cells = []
        for m in METHODS:
            n, h1, h5, mrr = stats(rs, m)
            cells.append('%.3f / %.3f / %.3f' % (h1, h5, mrr))
        print('| %s | %d | %s |' % (g, len(rs), ' | '.join(cells)))
    return groups


def verdict(name, groups):
    n, _, h5, mrr = stats(groups['all'], 'hearth')
    _, _, f5, _ = stats(groups['all'], 'bm25-file')
    _, _, w5, wmrr = stats(groups['all'], 'bm25-window')
    print('\n%s: overall Hit@5 %+.3f and MRR %+.3f vs bm25-window; Hit@5 %+.3f vs the best baseline '
          '(bar: +0.05)' % (name, h5 - w5, mrr - wmrr, h5 - max(f5, w5)))
    for g, rs in groups.items():
        if g == 'all' or len(rs) < 20:
            continue
        _, _, h5, mrr = stats(rs, 'hearth')
        _, _, w5, wmrr = stats(rs, 'bm25-window')
        ok = h5 > w5 and mrr > wmrr
        print('  %-11s n=%-3d Hit@5 %+.3f MRR %+.3f vs bm25-window: %s' % (
            g, len(rs), h5 - w5, mrr - wmrr, 'above' if ok else 'NOT above'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--split', nargs=3, action='append', metavar=('NAME', 'HEARTH', 'BASELINES'),
                    required=True)
    a = ap.parse_args()
    pooled = []
    for name, h, b in a.split:
        rows = load(h, b)
        pooled += rows
        verdict(name, table('%s split, %d instances' % (name, len(rows)), rows))
    if len(a.split) > 1:
        verdict('pooled', table('pooled, %d instances' % len(pooled), pooled))


if __name__ == '__main__':
    main()

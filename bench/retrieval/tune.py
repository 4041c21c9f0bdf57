#!/usr/bin/python3
"""Chooses hearth's fusion constants on the dev split by leave-one-package-out cross-validation.

  python3 bench/retrieval/run_hearth.py --hearth build/release/src/cli/hearth --trees TREES \\
      --split ../shared/fixtures/retrieval/dev.jsonl --no-index \\
      --query-tool build/release/bench/index_query --dump dev_dump.jsonl
  python3 bench/retrieval/tune.py dev_dump.jsonl [--check public_dump.jsonl]

The dump holds, per instance, every candidate file's raw signals before fusion (its three best
chunk scores, its path score, its role, whether the query names that role, whether the file is in
the benchmark's corpus rule). This script re-does src/index/fusion.cpp's fusion in numpy for any
constants (the lexical score best + decay x 2nd + decay^2 x 3rd, times the role prior's
exp(weight); weighted RRF with the path list; files past rank 100 dropped, as run_hearth.py asks
hearth for 100), so a grid costs no search.

The tuned constants: the role weights (source fixed at 0), prior_on_path, path_weight, rrf_k,
decay. The objective is mean MRR + mean Hit@5. For each dev package P, coordinate descent (two
rounds over the grids below, starting from the current defaults) picks constants on the other
packages and scores P's instances with them: the cross-validated estimate. The constants shipped
are the same procedure run on all dev packages; the script prints them, their LOPO estimate,
the per-signal ablations and (--check) their score on another split's dump.
"""
import argparse
import collections
import json
import math
import sys

import numpy as np

ROLES = ['source', 'header', 'test', 'test data', 'docs', 'build', 'vendored', 'data']
GRIDS = {
    'role': [-3.0, -2.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5],
    'path_weight': [0.0, 0.25, 0.5, 0.75, 1.0, 1.5],
    'rrf_k': [2.0, 5.0, 10.0, 20.0, 60.0],
    'decay': [0.0, 0.1, 0.25, 0.5],
    'prior_on_path': [0, 1],
}
# The constants before tuning (the start of the descent).
DEFAULT = dict(role={r: 0.0 for r in ROLES}, path_weight=0.5, rrf_k=10.0, decay=0.25,
               prior_on_path=0)
LIMIT = 100  # run_hearth.py asks hearth for 100 files


KEEP = 300  # candidates kept per list (speed): the 300 best by best chunk, the 300 best by path


class Inst:
    def __init__(self, d):
        self.id, self.package, self.languages = d['id'], d['package'], d['languages']
        files = d['files']
        by_chunk = sorted(range(len(files)), key=lambda i: -(files[i][2][0] if files[i][2] else 0))
        by_path = sorted((i for i in range(len(files)) if files[i][3] is not None),
                         key=lambda i: -files[i][3])
        keep = set(by_chunk[:KEEP]) | set(by_path[:KEEP])
        files = sorted((files[i] for i in keep), key=lambda x: x[0])  # path ~ file id order (ties)
        n = len(files)
        self.c = np.zeros((3, n))
        for i, f in enumerate(files):
            for j, s in enumerate(f[2][:3]):
                self.c[j, i] = s
        self.has_chunk = np.array([len(f[2]) > 0 for f in files], dtype=bool)
        self.path = np.array([f[3] if f[3] is not None else 0.0 for f in files])
        self.has_path = np.array([f[3] is not None for f in files], dtype=bool)
        named = set(d['named'])
        self.role = np.array([ROLES.index(f[1]) for f in files], dtype=int)
        self.named = np.array([ROLES[r] in named for r in self.role], dtype=bool)
        self.rule = np.array([f[4] for f in files], dtype=bool)
        gold = set(d['gold'])
        self.gold = np.array([f[0] in gold for f in files], dtype=bool)
        self.tie = np.arange(n)


def ranks_desc(score, tie):
    order = np.lexsort((tie, -score))
    rank = np.empty(len(score), dtype=float)
    rank[order] = np.arange(1, len(score) + 1)
    return rank, order


def first_gold_rank(inst, p):
    w = np.array([p['role'][r] for r in ROLES])
    factor = np.where(inst.named, 1.0, np.exp(w[inst.role]))
    d = p['decay']
    lex = inst.c[0] + d * inst.c[1] + (d * d) * inst.c[2]
    lex = np.where(inst.has_chunk, lex, 0.0)
    lrank, _ = ranks_desc(lex * factor, inst.tie)
    fused = np.where(lex > 0, 1.0 / (p['rrf_k'] + lrank), 0.0)
    if p['path_weight'] > 0 and inst.has_path.any():
        ps = np.where(inst.has_path, inst.path * (factor if p['prior_on_path'] else 1.0), -np.inf)
        prank, _ = ranks_desc(ps, inst.tie)
        fused = fused + np.where(inst.has_path, p['path_weight'] / (p['rrf_k'] + prank), 0.0)
    _, order = ranks_desc(fused, inst.tie)
    order = order[:LIMIT]
    kept = order[inst.rule[order]]
    hits = np.nonzero(inst.gold[kept])[0]
    return int(hits[0]) + 1 if len(hits) else None


def metrics(insts, p):
    rows = []
    for i in insts:
        r = first_gold_rank(i, p)
        rows.append(dict(hit1=float(r == 1), hit5=float(r is not None and r <= 5),
                         hit10=float(r is not None and r <= 10), mrr=1.0 / r if r else 0.0,
                         languages=i.languages, package=i.package, id=i.id))
    return rows


def mean(rows, m):
    return sum(r[m] for r in rows) / len(rows) if rows else 0.0


def objective(insts, p):
    rows = metrics(insts, p)
    return mean(rows, 'mrr') + mean(rows, 'hit5')


def copy(p):
    q = dict(p)
    q['role'] = dict(p['role'])
    return q


def fit(insts, start=DEFAULT, rounds=2, roles=True):
    best = copy(start)
    best_v = objective(insts, best)
    keys = ([('role', r) for r in ROLES[1:]] if roles else []) + [
        ('path_weight', None), ('rrf_k', None), ('decay', None)] + (
        [('prior_on_path', None)] if roles else [])
    for _ in range(rounds):
        changed = False
        for k, r in keys:
            grid = GRIDS['role'] if k == 'role' else GRIDS[k]
            for v in grid:
                q = copy(best)
                if k == 'role':
                    q['role'][r] = v
                else:
                    q[k] = v
                val = objective(insts, q)
                if val > best_v + 1e-12:
                    best, best_v, changed = q, val, True
        if not changed:
            break
    return best


def summary(rows, title):
    out = ['%-34s n=%-3d Hit@1 %.3f Hit@5 %.3f Hit@10 %.3f MRR %.3f' % (
        title, len(rows), mean(rows, 'hit1'), mean(rows, 'hit5'), mean(rows, 'hit10'),
        mean(rows, 'mrr'))]
    return '\n'.join(out)


def per_language(rows):
    by = collections.defaultdict(list)
    for r in rows:
        for lang in r['languages']:
            by[lang].append(r)
    return {k: (len(v), mean(v, 'hit5'), mean(v, 'mrr')) for k, v in by.items()}


def fmt(p):
    return ('role weights ' + ', '.join('%s %g' % (r, p['role'][r]) for r in ROLES[1:]) +
            '; prior_on_path %d, path_weight %g, rrf_k %g, decay %g' % (
                p['prior_on_path'], p['path_weight'], p['rrf_k'], p['decay']))


def load(path):
    return [Inst(json.loads(l)) for l in open(path)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dump')
    ap.add_argument('--check', default='', help='another split\'s dump, scored with the choice')
    ap.add_argument('--no-lopo', action='store_true')
    a = ap.parse_args()
    insts = load(a.dump)
    pkgs = sorted(set(i.package for i in insts))
    print('dev: %d instances, %d packages' % (len(insts), len(pkgs)))
    print(summary(metrics(insts, DEFAULT), 'pre-tuning constants'))
    if not a.no_lopo:
        cv_rows = []
        for k, pk in enumerate(pkgs):
            train = [i for i in insts if i.package != pk]
            test = [i for i in insts if i.package == pk]
            p = fit(train)
            cv_rows += metrics(test, p)
            print('  fold %2d/%d %-32s %s' % (k + 1, len(pkgs), pk, fmt(p)), flush=True)
        print(summary(cv_rows, 'LOPO cross-validated'))
        for lang, (n, h5, mrr) in sorted(per_language(cv_rows).items(), key=lambda x: -x[1][0]):
            print('    %-12s n=%-3d Hit@5 %.3f MRR %.3f' % (lang, n, h5, mrr))
    chosen = fit(insts)
    print('chosen on all dev: ' + fmt(chosen))
    rows = metrics(insts, chosen)
    print(summary(rows, 'chosen, on dev (in-sample)'))
    # Ablations on dev: each signal alone and the fusion without it.
    no_prior = copy(chosen)
    no_prior['role'] = {r: 0.0 for r in ROLES}
    print(summary(metrics(insts, no_prior), 'chosen without the role prior'))
    lex_only = copy(chosen)
    lex_only['path_weight'] = 0.0
    print(summary(metrics(insts, lex_only), 'chosen without the path signal'))
    print(summary(metrics(insts, dict(copy(DEFAULT), path_weight=0.0)), 'lexical alone (no prior)'))
    if a.check:
        other = load(a.check)
        print(summary(metrics(other, DEFAULT), 'check split, pre-tuning constants'))
        print(summary(metrics(other, chosen), 'check split, chosen constants'))
        print(summary(metrics(other, no_prior), 'check split, chosen without prior'))
        for lang, (n, h5, mrr) in sorted(per_language(metrics(other, chosen)).items(),
                                         key=lambda x: -x[1][0]):
            print('    %-12s n=%-3d Hit@5 %.3f MRR %.3f' % (lang, n, h5, mrr))
    print('HEARTH_RANK=' + ','.join(
        ['role.%s=%g' % (r.replace(' ', '_'), chosen['role'][r]) for r in ROLES[1:]] +
        ['prior_on_path=%d' % chosen['prior_on_path'], 'path_weight=%g' % chosen['path_weight'],
         'rrf_k=%g' % chosen['rrf_k'], 'decay=%g' % chosen['decay']]))


if __name__ == '__main__':
    main()

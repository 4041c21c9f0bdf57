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
decay. The objective is mean MRR + mean Hit@5. For each dev package P, coordinate descent (one
round over the grids below, starting from the pre-tuning constants) picks constants on the other
packages and scores P's instances with them: the cross-validated estimate. The constants shipped
are the same procedure run on all dev packages; the script prints them, their LOPO estimate,
the per-signal ablations and (--check) their score on another split's dump.
"""
import argparse
import collections
import json
import math
import os
import sys

import numpy as np

ROLES = ['source', 'header', 'test', 'test data', 'docs', 'build', 'vendored', 'data']
GRIDS = {
    'role': [-3.0, -2.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5],
    'path_weight': [0.0, 0.25, 0.5, 0.75, 1.0, 1.5],
    'rrf_k': [2.0, 5.0, 10.0, 20.0, 60.0],
    'decay': [0.0, 0.1, 0.25, 0.5, 0.75, 1.0],
    'prior_on_path': [0, 1],
    'def_weight': [0.0, 0.1, 0.25, 0.5, 1.0],
    'graph_weight': [0.0, 0.1, 0.25, 0.5, 1.0],
    'cover_weight': [0.0, 0.1, 0.25, 0.5, 1.0],
    'prf_weight': [0.0, 0.1, 0.25, 0.5, 1.0],
}
EXTRA = ['def', 'graph', 'cover', 'prf']  # more RRF lists (ranked like the path list), columns 4-7
# The constants before tuning (the start of the descent).
DEFAULT = dict(role={r: 0.0 for r in ROLES}, path_weight=0.5, rrf_k=10.0, decay=0.25,
               prior_on_path=0, def_weight=0.0, graph_weight=0.0, cover_weight=0.0, prf_weight=0.0)
LIMIT = 100  # run_hearth.py asks hearth for 100 files


KEEP = 150  # candidates kept per list (speed): the 150 best by best chunk, by path, by each list


class Inst:
    def __init__(self, d):
        self.id, self.package, self.languages = d['id'], d['package'], d['languages']
        files = d['files']
        by_chunk = sorted(range(len(files)), key=lambda i: -(files[i][2][0] if files[i][2] else 0))
        # [path, role, chunks, path, def, graph, cover, prf, rule]; older dumps lack some lists.
        files = [f[:-1] + [None] * (9 - len(f)) + f[-1:] for f in files]
        keep = set(by_chunk[:KEEP])
        for col in (3, 4, 5, 6, 7):
            by = sorted((i for i in range(len(files)) if files[i][col] is not None),
                        key=lambda i: -files[i][col])
            keep |= set(by[:KEEP])
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
        self.extra = {}
        for col, name in ((4, 'def'), (5, 'graph'), (6, 'cover'), (7, 'prf')):
            self.extra[name] = (np.array([f[col] if f[col] is not None else 0.0 for f in files]),
                                np.array([f[col] is not None for f in files], dtype=bool))
        self.rule = np.array([f[8] for f in files], dtype=bool)
        gold = set(d['gold'])
        self.gold = np.array([f[0] in gold for f in files], dtype=bool)
        self.tie = np.arange(n)


def ranks_desc(score, tie):
    # `tie` is always arange(n) (files in path order), so a stable sort of -score breaks ties
    # exactly as lexsort((tie, -score)) would, at a fraction of the cost.
    order = np.argsort(-score, kind='stable')
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
    fused = np.where(lex > 0, p.get('lex_weight', 1.0) / (p['rrf_k'] + lrank), 0.0)
    if p['path_weight'] > 0 and inst.has_path.any():
        ps = np.where(inst.has_path, inst.path * (factor if p['prior_on_path'] else 1.0), -np.inf)
        prank, _ = ranks_desc(ps, inst.tie)
        fused = fused + np.where(inst.has_path, p['path_weight'] / (p['rrf_k'] + prank), 0.0)
    for name in EXTRA:
        w_e = p[name + '_weight']
        score, has = inst.extra[name]
        if w_e > 0 and has.any():
            es = np.where(has, score * (factor if p['prior_on_path'] else 1.0), -np.inf)
            erank, _ = ranks_desc(es, inst.tie)
            fused = fused + np.where(has, w_e / (p['rrf_k'] + erank), 0.0)
    _, order = ranks_desc(fused, inst.tie)
    order = order[:LIMIT]
    kept = order[inst.rule[order]]
    hits = np.nonzero(inst.gold[kept])[0]
    return int(hits[0]) + 1 if len(hits) else None


def metrics(insts, p):
    rows = []
    for i in insts:
        r = first_gold_rank(i, p)
        rows.append(dict(first_rank=r, hit1=float(r == 1), hit5=float(r is not None and r <= 5),
                         hit10=float(r is not None and r <= 10), mrr=1.0 / r if r else 0.0,
                         languages=i.languages, package=i.package, id=i.id))
    return rows


def mean(rows, m):
    return sum(r[m] for r in rows) / len(rows) if rows else 0.0


_CACHE = {}


def objective(insts, p):
    """Mean MRR + mean Hit@5. Each instance's value under `p` is computed once for its whole
    dump and cached, so the leave-one-package-out folds, whose descents mostly retrace each
    other, cost little more than one fit."""
    group = insts[0].group
    key = (id(group), json.dumps(p, sort_keys=True))
    vals = _CACHE.get(key)
    if vals is None:
        vals = np.array([r['mrr'] + r['hit5'] for r in metrics(group, p)])
        _CACHE[key] = vals
    return float(vals[[i.k for i in insts]].mean())


def copy(p):
    q = dict(p)
    q['role'] = dict(p['role'])
    return q


ROUNDS = 2


def fit(insts, start=DEFAULT, rounds=None, roles=True, fixed=()):
    """Coordinate descent over the grids; `fixed` names constants left as in `start`."""
    rounds = ROUNDS if rounds is None else rounds
    best = copy(start)
    best_v = objective(insts, best)
    keys = ([('role', g) for g in role_groups()] if roles else []) + [
        ('path_weight', None), ('rrf_k', None), ('decay', None)] + (
        [('prior_on_path', None)] if roles else []) + [('def_weight', None), ('graph_weight', None),
                                               ('cover_weight', None), ('prf_weight', None)]
    keys = [(k, r) for k, r in keys if k not in fixed]
    for _ in range(rounds):
        changed = False
        for k, r in keys:
            grid = GRIDS['role'] if k == 'role' else GRIDS[k]
            for v in grid:
                q = copy(best)
                if k == 'role':
                    for member in r:
                        q['role'][member] = v
                else:
                    q[k] = v
                val = objective(insts, q)
                if val > best_v + 1e-12:
                    best, best_v, changed = q, val, True
        if not changed:
            break
    return best, best_v


GROUPS = []  # --role-groups: roles that share one weight (fewer free constants)


def role_groups():
    """The tuned role weights: each --role-groups group is one, every other role (but source,
    the reference) one of its own."""
    grouped = [tuple(g) for g in GROUPS]
    inside = {r for g in grouped for r in g}
    return grouped + [(r,) for r in ROLES[1:] if r not in inside]


FIX = {}  # --fix: constants held at a value (a signal dropped), not tuned
DROP = {}  # --drop: constants set to 0 after each fit (a signal the check split rejected)


def fit_variants(variants, pkgs_out=(), **kw):
    """Fits on each variant's dump (a search-side constant such as stem_weight that changes the
    chunk scores themselves) without the packages in pkgs_out; returns the best (name, params)."""
    best = None
    for name, insts in variants.items():
        train = [i for i in insts if i.package not in pkgs_out]
        start = copy(DEFAULT)
        start.update(FIX)
        p, v = fit(train, start=start, fixed=tuple(FIX), **kw)
        if best is None or v > best[2] + 1e-12:
            best = (name, p, v)
    return best[0], best[1]


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
            '; prior_on_path %d, path_weight %g, rrf_k %g, decay %g, def_weight %g, '
            'graph_weight %g, cover_weight %g, prf_weight %g' % (
                p['prior_on_path'], p['path_weight'], p['rrf_k'], p['decay'], p['def_weight'],
                p['graph_weight'], p['cover_weight'], p.get('prf_weight', 0.0)))


def load(path):
    insts = [Inst(json.loads(l)) for l in open(path)]
    for k, i in enumerate(insts):
        i.k, i.group = k, insts
    return insts


def ablations(insts, chosen, title):
    """Each signal alone and the chosen fusion without it (the other constants as chosen)."""
    none = {r: 0.0 for r in ROLES}
    off = dict(path_weight=0.0, def_weight=0.0, graph_weight=0.0, cover_weight=0.0, prf_weight=0.0)
    rows = [('chosen fusion', chosen),
            ('  without the role prior', dict(copy(chosen), role=none)),
            ('  without the path list', dict(copy(chosen), path_weight=0.0)),
            ('  without the def list', dict(copy(chosen), def_weight=0.0)),
            ('  without the graph list', dict(copy(chosen), graph_weight=0.0)),
            ('  without the cover list', dict(copy(chosen), cover_weight=0.0)),
            ('  without the prf list', dict(copy(chosen), prf_weight=0.0)),
            ('lexical alone (no prior, no lists)', dict(copy(chosen), role=none, **off)),
            ('lexical + role prior only', dict(copy(chosen), **off)),
            ('path list alone', dict(copy(chosen), role=none, **off, _only='path')),
            ('def list alone', dict(copy(chosen), role=none, **off, _only='def')),
            ('graph list alone', dict(copy(chosen), role=none, **off, _only='graph')),
            ('cover list alone', dict(copy(chosen), role=none, **off, _only='cover')),
            ('prf list alone', dict(copy(chosen), role=none, **off, _only='prf'))]
    for name, p in rows:
        only = p.pop('_only', None)
        if only:  # one list's ranking alone: its weight 1, the lexical list weighed ~0
            p[only + '_weight'] = 1.0
            p['lex_weight'] = 1e-9
        print(summary(metrics(insts, p), '%s: %s' % (title, name)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dump', help='the dev dump (search-side constants as shipped)')
    ap.add_argument('--variant', action='append', default=[],
                    help='NAME=DUMP: the dev dump with a search-side constant changed (e.g. '
                         'stem_weight=0.5=dev_dump_stem.jsonl); the LOPO choice picks among them')
    ap.add_argument('--check', default='', help='another split\'s dump, scored with the choice')
    ap.add_argument('--check-variant', action='append', default=[],
                    help='NAME=DUMP: the check split under a variant')
    ap.add_argument('--no-lopo', action='store_true')
    ap.add_argument('--rounds', type=int, default=1,
                    help='coordinate-descent rounds over the grids (each fit, LOPO folds included)')
    ap.add_argument('--fix', default='',
                    help='NAME=VALUE,...: constants held fixed, not tuned (e.g. def_weight=0: a '
                         'signal dropped)')
    ap.add_argument('--drop', default='',
                    help='NAME,...: set to 0 after every fit, LOPO folds included (a signal '
                         'tuned with the others, then dropped because it did not help on both '
                         'splits; the shipped fusion uses --drop def_weight)')
    ap.add_argument('--folds', default='0/1',
                    help='K/N: only the folds k with k %% N == K (run N at once, then --lopo-params)')
    ap.add_argument('--fold-params-out', default='', help='append each fold\'s choice (JSON lines)')
    ap.add_argument('--lopo-params', nargs='*', default=[],
                    help='assemble the LOPO estimate from these --fold-params-out files')
    ap.add_argument('--role-groups', default='',
                    help='GROUP;GROUP...: each GROUP a comma list of roles that share one weight '
                         '(e.g. "test,test data;docs,build,data"): fewer free constants')
    a = ap.parse_args()
    for g in filter(None, a.role_groups.split(';')):
        members = [r.strip() for r in g.split(',')]
        for r in members:
            if r not in ROLES[1:]:
                sys.exit('tune.py: unknown role %r' % r)
        GROUPS.append(members)
    global ROUNDS
    ROUNDS = a.rounds
    for item in filter(None, a.drop.split(',')):
        DROP[item] = 0.0
    for item in filter(None, a.fix.split(',')):
        k, v = item.split('=')
        FIX[k] = float(v)
    variants = collections.OrderedDict(base=load(a.dump))
    for v in a.variant:
        name, path = v.rsplit('=', 1)
        variants[name] = load(path)
    insts = variants['base']
    pkgs = sorted(set(i.package for i in insts))
    print('dev: %d instances, %d packages, variants: %s' % (len(insts), len(pkgs),
                                                            ', '.join(variants)))
    print(summary(metrics(insts, DEFAULT), 'pre-tuning constants'))
    if a.lopo_params:
        # The folds' choices saved by earlier runs (--fold-params-out, e.g. two runs of disjoint
        # --folds at once): the same LOPO estimate without refitting.
        saved = {}
        for path in a.lopo_params:
            for line in open(path):
                d = json.loads(line)
                saved[d['package']] = (d['variant'], d['params'])
        missing = [pk for pk in pkgs if pk not in saved]
        if missing:
            sys.exit('tune.py: no saved fold for ' + ', '.join(missing))
        cv_rows = []
        for pk in pkgs:
            name, p = saved[pk]
            p.update(DROP)
            cv_rows += metrics([i for i in variants[name] if i.package == pk], p)
        a.no_lopo = True
        print(summary(cv_rows, 'LOPO cross-validated (saved folds)'))
        for lang, (n, h5, mrr) in sorted(per_language(cv_rows).items(), key=lambda x: -x[1][0]):
            print('    %-12s n=%-3d Hit@5 %.3f MRR %.3f' % (lang, n, h5, mrr))
        json.dump(dict(rows=cv_rows), open(a.dump + '.lopo.json', 'w'))
    if not a.no_lopo:
        cv_rows = []
        k0, n_parts = (int(x) for x in a.folds.split('/'))
        out = open(a.fold_params_out, 'a') if a.fold_params_out else None
        done = set()
        if a.fold_params_out and os.path.exists(a.fold_params_out):
            done = {json.loads(l)['package'] for l in open(a.fold_params_out)}  # resume
        for k, pk in enumerate(pkgs):
            if k % n_parts != k0 or pk in done:
                continue
            name, p = fit_variants(variants, pkgs_out={pk})
            p.update(DROP)
            cv_rows += metrics([i for i in variants[name] if i.package == pk], p)
            print('  fold %2d/%d %-32s %s: %s' % (k + 1, len(pkgs), pk, name, fmt(p)), flush=True)
            if out:
                out.write(json.dumps(dict(package=pk, variant=name, params=p)) + '\n')
                out.flush()
        if n_parts > 1:
            return
        print(summary(cv_rows, 'LOPO cross-validated'))
        for lang, (n, h5, mrr) in sorted(per_language(cv_rows).items(), key=lambda x: -x[1][0]):
            print('    %-12s n=%-3d Hit@5 %.3f MRR %.3f' % (lang, n, h5, mrr))
        # In run_hearth.py's --out format, for report.py (hearth's LOPO ranks against baselines).
        json.dump(dict(rows=cv_rows), open(a.dump + '.lopo.json', 'w'))
    name, chosen = fit_variants(variants)
    chosen.update(DROP)
    print('chosen on all dev: %s: %s' % (name, fmt(chosen)))
    dev = variants[name]
    print(summary(metrics(dev, chosen), 'chosen, on dev (in-sample)'))
    for vname, vinsts in variants.items():
        _, p = fit_variants(collections.OrderedDict([(vname, vinsts)]))
        print(summary(metrics(vinsts, p), 'variant %s, fitted in-sample' % vname))
    ablations(dev, chosen, 'dev')
    if a.check:
        checks = dict(base=a.check)
        for v in a.check_variant:
            vn, path = v.rsplit('=', 1)
            checks[vn] = path
        other = load(checks.get(name, a.check))
        print(summary(metrics(load(a.check), DEFAULT), 'check split, pre-tuning constants'))
        print(summary(metrics(other, chosen), 'check split, chosen constants'))
        ablations(other, chosen, 'check')
        for lang, (n, h5, mrr) in sorted(per_language(metrics(other, chosen)).items(),
                                         key=lambda x: -x[1][0]):
            print('    %-12s n=%-3d Hit@5 %.3f MRR %.3f' % (lang, n, h5, mrr))
        json.dump(dict(rows=metrics(other, chosen)), open(a.check + '.chosen.json', 'w'))
    extra = '' if name == 'base' else ',' + name
    print('HEARTH_RANK=' + ','.join(
        ['role.%s=%g' % (r.replace(' ', '_'), chosen['role'][r]) for r in ROLES[1:]] +
        ['prior_on_path=%d' % chosen['prior_on_path'], 'path_weight=%g' % chosen['path_weight'],
         'rrf_k=%g' % chosen['rrf_k'], 'decay=%g' % chosen['decay'],
         'def_weight=%g' % chosen['def_weight'], 'graph_weight=%g' % chosen['graph_weight'],
         'cover_weight=%g' % chosen['cover_weight'],
         'prf_weight=%g' % chosen.get('prf_weight', 0.0)]) + extra)


if __name__ == '__main__':
    main()

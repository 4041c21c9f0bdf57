#!/usr/bin/python3
"""Runs hearth's codebase search on the Debian-patch retrieval benchmark and prints its metrics.

  bench/retrieval/fetch-trees.sh build/debsrc            # once: apt-get source + dpkg-source -x
  python3 bench/retrieval/run_hearth.py --hearth build/release/src/cli/hearth \
      --trees build/debsrc/trees [--packages curl,unzip] [--out results.json]

For each package it writes TREE/.hearthignore ("/debian/" and "/.pc/": the benchmark's corpus rule
forbids indexing them), runs `hearth index TREE --max-file-size 2000000` (timed, db size noted),
then `hearth search --json --root TREE -- QUERY` per instance. The ranking is hearth's, restricted
to files in the corpus rule (the README allows indexing more but scores only those), and scored
with the shared tools' own metrics(), so numbers are comparable with the README's baselines.
Only the patched corpus is supported: hearth indexes the tree as it is on disk.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, '..', '..', '..', 'shared', 'tools'))
sys.path.insert(0, TOOLS)
import debpatch as dp  # noqa: E402
import retrieval_eval as ev  # noqa: E402


def in_rule(tree, rel, cache):
    if rel in cache:
        return cache[rel]
    head = None
    base = os.path.basename(rel)
    if '.' not in base or base.endswith('.in'):
        try:
            with open(os.path.join(tree, rel), 'rb') as f:
                head = f.read(128)
        except OSError:
            head = b''
    ok = dp.code_language(rel, head) is not None and not dp.is_excluded_dir(rel)
    cache[rel] = ok
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--hearth', required=True)
    ap.add_argument('--trees', required=True)
    ap.add_argument('--split', default=os.path.join(TOOLS, '..', 'fixtures', 'retrieval', 'public.jsonl'))
    ap.add_argument('--packages', default='', help='comma-separated subset')
    ap.add_argument('--include-leaky', action='store_true')
    ap.add_argument('--reindex', action='store_true', help='index with --rebuild')
    ap.add_argument('--out', default='')
    ap.add_argument('--query-tool', default='',
                    help='bench index_query binary: run all of a package\'s queries in one process '
                         '(same Search() as the CLI; latency without process start)')
    ap.add_argument('--no-index', action='store_true', help='use the existing indexes as they are')
    ap.add_argument('--dump', default='',
                    help='with --query-tool: write every candidate file\'s raw signals per instance '
                         '(JSON lines) to this file, for bench/retrieval/tune.py')
    a = ap.parse_args()

    insts = [json.loads(l) for l in open(a.split)]
    if not a.include_leaky:
        insts = [i for i in insts if not i['leaky']]
    wanted = set(p for p in a.packages.split(',') if p)
    if wanted:
        insts = [i for i in insts if i['package'] in wanted]
    by_pkg = collections.OrderedDict()
    for i in insts:
        by_pkg.setdefault(i['package'], []).append(i)

    rows, build, latencies, cpu_ms, dumps = [], {}, [], [], []
    for pkg, items in by_pkg.items():
        tree = os.path.join(a.trees, pkg)
        if not os.path.isdir(tree):
            print('missing tree', tree, file=sys.stderr)
            continue
        with open(os.path.join(tree, '.hearthignore'), 'w') as f:
            f.write('/debian/\n/.pc/\n')
        if a.no_index:
            build[pkg] = dict(seconds=0, db_bytes=os.path.getsize(
                os.path.join(tree, '.hearth', 'index.db')))
        else:
            cmd = [a.hearth, 'index', tree, '--max-file-size', '2000000', '--json-progress']
            if a.reindex:
                cmd.append('--rebuild')
            t0 = time.time()
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print('index failed', pkg, out.stderr, file=sys.stderr)
                continue
            done = json.loads(out.stdout.strip().splitlines()[-1])
            build[pkg] = dict(seconds=round(time.time() - t0, 2), db_bytes=done['db_bytes'],
                              files=done['files_indexed'] + done['files_unchanged'],
                              chunks=done['chunks'])
        cache = {}
        batch = None
        if a.query_tool:
            text = ''.join('%s\t%s\n' % (tree, ' '.join(i['query'].split())) for i in items)
            env = dict(os.environ)
            if a.dump:
                env['HEARTH_QUERY_DUMP'] = '1'
            r = subprocess.run([a.query_tool, '100'], input=text, capture_output=True, text=True,
                               env=env)
            batch = r.stdout.splitlines()
            if len(batch) != len(items):
                print('query tool failed', pkg, r.stderr, file=sys.stderr)
                batch += ['0\t0'] * (len(items) - len(batch))
        for k, inst in enumerate(items):
            if batch is not None:
                f = batch[k].split('\t')
                cpu_ms.append(float(f[0]))
                latencies.append(float(f[1]) / 1000)
                ranked = f[2:]
                if a.dump:
                    d = json.loads(f[2]) if len(f) > 2 else dict(named=[], files=[])
                    for x in d['files']:
                        x.append(in_rule(tree, x[0], cache))
                    dumps.append(dict(id=inst['id'], package=pkg, languages=inst['languages'],
                                      gold=inst['gold_files'], named=d['named'], files=d['files']))
                    ranked = [x[0] for x in d['files']]
            else:
                t1 = time.time()
                r = subprocess.run([a.hearth, 'search', '--json', '--limit', '100', '--root', tree,
                                    '--', inst['query']], capture_output=True, text=True)
                latencies.append(time.time() - t1)
                if r.returncode:
                    print('search failed', inst['id'], r.stderr, file=sys.stderr)
                    ranked = []
                else:
                    ranked = [x['path'] for x in json.loads(r.stdout)['results']]
            ranked = [p for p in ranked if in_rule(tree, p, cache)]
            m = ev.metrics(ranked, inst['gold_files'])
            m.update(id=inst['id'], languages=inst['languages'], stem=inst['stem_mention'],
                     top10=ranked[:10], gold=inst['gold_files'])
            rows.append(m)
        s = ev.summarise([x for x in rows if x['id'].split('/')[0] == pkg])['all']
        print('%-24s n=%-3d Hit@1 %.2f Hit@5 %.2f MRR %.3f  index %.1fs %.1f MiB' % (
            pkg, s['n'], s['hit1'], s['hit5'], s['mrr'], build[pkg]['seconds'],
            build[pkg]['db_bytes'] / 1048576), flush=True)

    print()
    print(ev.fmt_table('hearth search, patched corpus', ev.summarise(rows)))
    print()
    per_lang = ev.summarise(rows, key=lambda r: r['languages'])
    print('| language | n | Hit@1 / Hit@10 / MRR |')
    print('|---|---|---|')
    for g, s in sorted(per_lang.items(), key=lambda kv: -kv[1]['n']):
        print('| %s | %d | %.2f / %.2f / %.2f |' % (g, s['n'], s['hit1'], s['hit10'], s['mrr']))
    print()
    stem = ev.summarise(rows, key=lambda r: ['stem mention' if r['stem'] else 'no stem mention'])
    for g, s in stem.items():
        print('| %s | %d | %.2f / %.2f / %.2f |' % (g, s['n'], s['hit1'], s['hit10'], s['mrr']))
    if latencies:
        lat = sorted(latencies)
        what = 'in process, wall' if a.query_tool else 'process start to JSON, wall'
        print('\nsearch latency (%s, long issue-text queries): p50 %.0f ms, p95 %.0f ms'
              % (what, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000))
    if cpu_ms:
        c = sorted(cpu_ms)
        print('search CPU time: p50 %.1f ms, p95 %.1f ms, max %.1f ms'
              % (c[len(c) // 2], c[int(len(c) * 0.95)], c[-1]))
    if a.out:
        json.dump(dict(rows=rows, build=build), open(a.out, 'w'), indent=1)
    if a.dump:
        with open(a.dump, 'w') as f:
            for d in dumps:
                f.write(json.dumps(d) + '\n')


if __name__ == '__main__':
    main()

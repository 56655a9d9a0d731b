#!/usr/bin/env python3
"""Oils-format spec test runner for slicebox.

Usage: python3 spec/run.py [--shells a,b,c] [--require a,b] [--filter SUBSTR]
                           [--verbose] FILE...

Parses spec/*.test.sh files in the Oils format (see spec/README.md), runs each
case in every selected shell ("cell") and prints a pass/ok/N-I/BUG/FAIL matrix.
A file with `## our_shell: ysh` runs in the ysh cell only; every other file
runs in the sh cells. The Oils cells (osh, ysh) are reported as "not run" when
their shell is not installed, unless --require names them. Exit status is 0
only if no cell FAILed and every required cell ran. Dependency-free, Python 3.11.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

CELLS = ['bash-builtin', 'bash-exe', 'dash', 'mksh', 'zsh', 'busybox', 'osh', 'ysh']
# cell -> (program, argv prefix before the code, names accepted in ## qualifiers,
#          language of the files it runs)
CELL_DEFS = {
    'bash-builtin': ('bash', ['-c'], {'bash-builtin', 'bash'}, 'sh'),
    'bash-exe': ('bash', ['-c'], {'bash-exe', 'bash'}, 'sh'),
    'dash': ('dash', ['-c'], {'dash'}, 'sh'),
    'mksh': ('mksh', ['-c'], {'mksh'}, 'sh'),
    'zsh': ('zsh', ['-c'], {'zsh'}, 'sh'),
    'busybox': ('busybox', ['sh', '-c'], {'busybox', 'ash'}, 'sh'),
    'osh': ('osh', ['-c'], {'osh'}, 'sh'),
    'ysh': ('ysh', ['-c'], {'ysh'}, 'ysh'),
}
# Oils is in no package registry: shell-tests/build-osh.sh builds it from
# vendor/. Without it these cells are "not run", never silently dropped.
OPTIONAL_CELLS = {'osh', 'ysh'}
DEFAULT_BUILTINS = 'sandbox slice-add slice-list slice-show slice-rm slice-tag slice-gc slice-verify slice-diff store-stats'

# Same shape as Oils' test/sh_spec.py KEY_VALUE_RE, but shell names may contain '-'.
KEY_VALUE_RE = re.compile(
    r'^##\s+(?:(OK(?:-\d)?|BUG(?:-\d)?|N-I)\s+([\w+/-]+)\s+)?([\w-]+):\s*(.*)$')
END_RE = re.compile(r'^##\s+END\s*$')
KEYS = {'stdout', 'stderr', 'status', 'stdout-json', 'stderr-json', 'code'}

# Result ranking: a cell's result is the worst of its assertions (as in Oils).
FAIL, BUG, NI, OK, PASS = range(5)
NOT_RUN = 'not-run'                 # a cell whose shell is missing: no rank, no verdict
LABELS = {FAIL: 'FAIL', BUG: 'BUG', NI: 'N-I', OK: 'ok', PASS: 'pass', NOT_RUN: 'not run'}
COLORS = {FAIL: '31', BUG: '35', NI: '33', OK: '36', PASS: '32', NOT_RUN: '31'}


class ParseError(Exception):
    pass


def qual_rank(q):
    if q is None:
        return PASS
    return {'O': OK, 'B': BUG, 'N': NI}[q[0]]


def parse_file(path):
    """Return a list of cases: dict(name, line, code, specs={(qual, shells-tuple): {key: value}})."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    cases, case, i = [], None, 0
    language = 'sh'

    def err(msg, at=None):
        raise ParseError(f'{path}:{(i if at is None else at) + 1}: {msg}')

    while i < len(lines):
        line = lines[i]
        if line.startswith('####'):
            case = {'name': line[4:].strip(), 'line': i + 1, 'code': [], 'specs': {},
                    'in_code': True}
            cases.append(case)
            i += 1
            continue
        m = KEY_VALUE_RE.match(line)
        if line.startswith('##') and not m:
            err(f'invalid ## line: {line!r}')
        if m and case is None:          # file-level metadata: only our_shell is used
            if m.group(3) == 'our_shell':
                language = m.group(4).strip()
                if language not in ('sh', 'osh', 'ysh'):
                    err(f'our_shell must be osh or ysh, not {language!r}')
            i += 1
            continue
        if case is None:
            i += 1
            continue
        if not m:
            if case['in_code']:
                case['code'].append(line)
            elif line.strip() and not line.lstrip().startswith('#'):
                err('code after expectations')
            i += 1
            continue
        case['in_code'] = False
        at = i
        qual, shells, key, value = m.groups()
        if key.lower() not in KEYS:
            err(f'unknown key {key!r}')
        if key in ('STDOUT', 'STDERR'):        # multi-line block, ends at ## END or next ## line
            if value:
                err(f'{key}: must be followed by a newline')
            body, i = [], i + 1
            while i < len(lines) and not lines[i].startswith('##'):
                body.append(lines[i] + '\n')
                i += 1
            if i < len(lines) and END_RE.match(lines[i]):
                i += 1
            key, value = key.lower(), ''.join(body)
        else:
            i += 1
            if key == 'code':
                case['code'] = [value]
                continue
            if key in ('stdout', 'stderr'):
                value += '\n'               # Oils: single-line values get a newline
            elif key.endswith('-json'):
                try:
                    value = json.loads(value)
                except ValueError as e:
                    err(f'bad JSON for {key}: {e}', at)
                key = key[:-5]
            elif key == 'status':
                if not value.strip().isdigit():
                    err(f'bad status {value!r}', at)
                value = int(value)
        spec = case['specs'].setdefault((qual, shells), {})
        if key in spec:
            err(f'duplicate {key!r} for {qual or "default"} {shells or ""}'.rstrip(), at)
        spec[key] = value
    for c in cases:
        c['code'] = '\n'.join(c['code']).strip('\n') + '\n'
        c['language'] = 'ysh' if language == 'ysh' else 'sh'
        del c['in_code']
    return cases


def expectations(case, cell):
    """Return {key: (rank, value)} for this cell: qualified variants override defaults."""
    aliases = CELL_DEFS[cell][2]
    out = dict((k, (PASS, v)) for k, v in case['specs'].get((None, None), {}).items())
    out.setdefault('status', (PASS, 0))
    # Exact cell names win over aliases like 'bash' when both are given.
    for exact in (False, True):
        for (qual, shells), spec in case['specs'].items():
            if qual is None:
                continue
            names = set(shells.split('/'))
            if (cell in names) if exact else (names & (aliases - {cell})):
                for k, v in spec.items():
                    out[k] = (qual_rank(qual), v)
    return out


def run_cell(case, cell, prog, workdir, env, timeout):
    code = case['code']
    if cell == 'bash-builtin':
        names = os.environ.get('SLICEBOX_BUILTINS', DEFAULT_BUILTINS).split()
        code = (f'enable -f "$SLICEBOX_LIB" {" ".join(names)} || '
                '{ echo "spec: cannot load builtins (' + ' '.join(names) + ') from '
                'SLICEBOX_LIB=$SLICEBOX_LIB" >&2; exit 99; }\n' + code)
    argv = [prog] + CELL_DEFS[cell][1] + [code]
    p = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, errb = p.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, errb = p.communicate()
        timed_out = True
    return {'stdout': out.decode('utf-8', 'replace'), 'stderr': errb.decode('utf-8', 'replace'),
            'status': p.returncode, 'timeout': timed_out}


def judge(exp, act):
    if act['timeout']:
        return FAIL
    rank = PASS
    for key, (r, want) in exp.items():
        rank = min(rank, r if act[key] == want else FAIL)
    return rank


def make_env(store, workdir, shell_path, spec_dir):
    env = {k: v for k, v in os.environ.items() if k.startswith(('SLICEBOX_', 'SPEC_'))}
    bindir = os.environ.get('SLICEBOX_BIN_DIR')
    env.update({
        'PATH': ':'.join(([bindir] if bindir else []) + ['/usr/local/bin', '/usr/bin', '/bin']),
        'HOME': os.environ.get('HOME', workdir),
        'LANG': 'C.UTF-8',
        'SLICEBOX_STORE': store,
        'TMP': workdir,
        'SH': shell_path,
        'SPEC_DIR': spec_dir,
    })
    return env


def clip(text, n=40):
    lines = text.splitlines()
    more = f'\n    ... ({len(lines) - n} more lines)' if len(lines) > n else ''
    return '\n'.join('    ' + l for l in lines[:n]) + more


def main():
    ap = argparse.ArgumentParser(description='Run Oils-format spec tests against slicebox.')
    ap.add_argument('--shells', default=','.join(CELLS),
                    help='comma-separated cells (default: %(default)s)')
    ap.add_argument('--require', default=os.environ.get('SPEC_REQUIRE', ''),
                    help='comma-separated cells that must run: a missing shell is then an '
                         'error, not "not run" (default: $SPEC_REQUIRE)')
    ap.add_argument('--filter', default='', help='only cases whose name contains SUBSTR')
    ap.add_argument('--verbose', '-v', action='store_true', help="show every cell's output")
    ap.add_argument('files', nargs='+', metavar='FILE')
    args = ap.parse_args()

    cells = [s for s in args.shells.split(',') if s]
    unknown = [c for c in cells if c not in CELL_DEFS]
    if unknown:
        sys.exit(f'run.py: unknown shell(s): {", ".join(unknown)} (known: {", ".join(CELLS)})')
    required = {c for c in args.require.split(',') if c}
    progs = {c: shutil.which(CELL_DEFS[c][0]) for c in cells}
    missing = sorted({CELL_DEFS[c][0] for c in cells
                      if not progs[c] and (c not in OPTIONAL_CELLS or c in required)})
    if missing:
        print(f'run.py: ERROR: shell(s) not installed: {", ".join(missing)}', file=sys.stderr)
        return 1
    not_run = [c for c in cells if not progs[c]]
    try:
        timeout = float(os.environ.get('SPEC_TIMEOUT', '60'))
        cases = [(f, c) for f in args.files for c in parse_file(f) if args.filter in c['name']]
    except (OSError, ValueError, ParseError) as e:
        print(f'run.py: ERROR: {e}', file=sys.stderr)
        return 1

    root = tempfile.mkdtemp(prefix='slicebox-spec.')
    store = os.environ.get('SLICEBOX_STORE') or os.path.join(root, 'store')
    # Private, as slicebox makes a store (it would make an open one private).
    os.makedirs(store, mode=0o700, exist_ok=True)
    print(f'# store={store} bin={os.environ.get("SLICEBOX_BIN_DIR", "(unset)")} '
          f'timeout={timeout:g}s tmp={root}', file=sys.stderr)

    color = sys.stdout.isatty()
    paint = lambda r, s: f'\x1b[{COLORS[r]}m{s}\x1b[0m' if color else s
    width = max(len(c) for c in cells + ['FAIL'] + ([LABELS[NOT_RUN]] if not_run else []))
    print(f'{"case":>4} {"line":>5}  ' + ' '.join(f'{c:<{width}}' for c in cells) + '  name')
    totals = {c: dict.fromkeys(LABELS, 0) for c in cells}
    failures, n = [], 0
    for n, (path, case) in enumerate(cases, 1):
        row = []
        for cell in cells:
            if CELL_DEFS[cell][3] != case['language']:
                row.append(f'{"-":<{width}}')
                continue
            if cell in not_run:
                totals[cell][NOT_RUN] += 1
                row.append(paint(NOT_RUN, f'{LABELS[NOT_RUN]:<{width}}'))
                continue
            workdir = os.path.join(root, f'{n:03d}-{cell}')
            os.makedirs(workdir)
            act = run_cell(case, cell, progs[cell], workdir,
                           make_env(store, workdir, progs[cell],
                                    os.path.dirname(os.path.abspath(path))), timeout)
            exp = expectations(case, cell)
            r = judge(exp, act)
            totals[cell][r] += 1
            row.append(paint(r, f'{LABELS[r]:<{width}}'))
            if r == FAIL:
                failures.append((path, case, cell, exp, act))
            if args.verbose:
                print(f'--- {case["name"]} [{cell}] -> {LABELS[r]} (status {act["status"]})\n'
                      f'  stdout:\n{clip(act["stdout"])}\n  stderr:\n{clip(act["stderr"])}')
        print(f'{n:>4} {case["line"]:>5}  ' + ' '.join(row) + f'  {case["name"]}', flush=True)

    print(f'\n{"":>11} ' + ' '.join(f'{c:<{width}}' for c in cells))
    for r in (PASS, OK, NI, BUG, FAIL, NOT_RUN):
        print(f'{LABELS[r]:>11} ' + ' '.join(f'{totals[c][r]:<{width}}' for c in cells))
    print(f'{n} cases x {len(cells)} shells, {len(failures)} FAIL')
    if not_run:
        print(f'NOT RUN: {", ".join(not_run)}: not installed (shell-tests/build-osh.sh builds '
              f'Oils from vendor/; run-all.sh does it), so {sum(totals[c][NOT_RUN] for c in not_run)} '
              'cases did not run in them')

    for path, case, cell, exp, act in failures:
        print(f'\n=== FAIL {path}:{case["line"]} "{case["name"]}" [{cell}]')
        if act['timeout']:
            print(f'  timed out after {timeout:g}s (SPEC_TIMEOUT)')
        for key in ('status', 'stdout', 'stderr'):
            if key in exp and exp[key][1] != act[key]:
                print(f'  expected {key}: {json.dumps(exp[key][1])}\n'
                      f'  actual   {key}: {json.dumps(act[key])}')
        if act['stderr'] and 'stderr' not in exp:
            print(f'  stderr (status {act["status"]}):\n{clip(act["stderr"])}')

    if not os.environ.get('SPEC_KEEP_TMP'):
        # Slice trees are read-only (0555): make them writable to remove them.
        subprocess.run(['chmod', '-R', 'u+w', root], check=False)
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

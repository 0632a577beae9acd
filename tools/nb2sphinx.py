"""Turn the notebooks nbdev has processed (`_proc/`) into plain notebooks that Sphinx + myst-nb render.

nbdev's processors (run by `tools/build_docs.py`) already did the nbdev part: exported cells removed,
hidden cells emptied, a `show_doc` cell added after each exported name and executed, the title cell
turned into frontmatter. What is left is quarto's part, done here for Sphinx:

- the frontmatter becomes the page's `# Title` and a lead paragraph;
- cell directives (`#| echo: false`, `#| output: asis`, `#| include: false`, ...) are applied;
- `show_doc` output (markdown from `TableRenderer`, below) becomes a markdown section with a label;
- links to the site's own pages (nbdev writes them as `doc_host` URLs, the README as `nbs/NN_x.ipynb`)
  become MyST references, which Sphinx checks (a dangling one is an error), and every backticked
  name that miniai exports is linked to its documentation;
- outputs a static page cannot show offline (widget views, JavaScript) are dropped.

The lessons are found by glob, never listed: every notebook in nbs/ becomes a page named the way
nbdev names it (`00_data.ipynb` -> `data.html`), and the home page gets a hidden toctree of them all,
so the sidebar lists every lesson in file order.
"""
from __future__ import annotations
import ast, base64, functools, inspect, json, re, textwrap
from pathlib import Path
from fastcore.docments import ShowDocRenderer, docments

ROOT = Path(__file__).resolve().parent.parent
NUM_PREFIX = re.compile(r'^\d+[a-zA-Z0-9]*_')  # what nbdev strips from a notebook's name for its page

def page_name(nb_name: str) -> str:
    "The page (without `.html`) nbdev gives the notebook `nb_name`: `00_data.ipynb` -> `data`."
    return NUM_PREFIX.sub('', Path(nb_name).stem.lower())

def _settings():
    import configparser
    cp = configparser.ConfigParser(); cp.read(ROOT/'settings.ini')
    return cp['DEFAULT']

def site_url() -> str:
    "Where nbdev thinks the site lives (`doc_host` + `doc_baseurl`): its links start with this."
    s = _settings()
    return s['doc_host'].rstrip('/') + '/' + s.get('doc_baseurl', '').strip('/')

# ---------------------------------------------------------------------------------------------
# Symbol lookup: miniai's own index, read from the working tree (so links work without an install)

@functools.lru_cache(None)
def symbols(): return Symbols()

class Symbols:
    "Map an exported name (`load_fmnist`, `Learner.fit`) to its place on the site, `page.html#anchor`."
    def __init__(self, root=ROOT):
        lib = _settings().get('lib_path', 'miniai')
        g, idx = {}, Path(root)/lib/'_modidx.py'
        if idx.exists(): exec(compile(idx.read_text(encoding='utf-8'), str(idx), 'exec'), g)
        self.syms = {}
        for mod, syms in g.get('d', {}).get('syms', {}).items():
            for full, (loc, _py) in syms.items():
                short = full[len(mod)+1:]
                if short.split('.')[-1].startswith('_'): continue  # private: not documented
                self.syms.setdefault(short, loc)
                self.syms.setdefault(full, loc)

    def url(self, name: str) -> str | None:
        "The full `doc_host` URL of `name` (as nbdev's own links are), or None."
        loc = self.syms.get(name.removesuffix('()'))
        return f'{site_url()}/{loc}' if loc else None

# ---------------------------------------------------------------------------------------------
# show_doc with a table

def _escape_cell(s: str) -> str: return s.replace('|', '\\|').replace('\n', ' ')

def _code(text: str, syms: Symbols) -> str:
    """`text` as inline code for a table cell, each name miniai documents in a code span of its own,
    so that the linking pass (nbdev's `add_links`, then `Converter.links`) turns it into a link."""
    if not text: return ''
    parts, pos = [], 0
    for m in re.finditer(r'[A-Za-z_][\w.]*', text):
        if not syms.url(m.group(0)): continue
        if text[pos:m.start()].strip(): parts.append(f'`{text[pos:m.start()]}`')
        parts.append(f'`{m.group(0)}`')
        pos = m.end()
    if text[pos:].strip(): parts.append(f'`{text[pos:]}`')
    return _escape_cell(' '.join(parts))

def _source_args(sym) -> dict:
    "{arg: (annotation source, default source)} as written in the code, where the source can be found."
    if inspect.isclass(sym):  # a class: the __init__ it has, its own or inherited
        sym = next((vars(c)['__init__'] for c in sym.__mro__ if '__init__' in vars(c)), None)
    if not inspect.isfunction(sym): return {}
    try: tree = ast.parse(textwrap.dedent(inspect.getsource(sym)))
    except (OSError, TypeError, SyntaxError, IndentationError): return {}
    f = tree.body[0] if tree.body else None
    if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)): return {}
    a = f.args
    pos = a.posonlyargs + a.args
    defs = [None]*(len(pos)-len(a.defaults)) + list(a.defaults)
    pairs = list(zip(pos, defs)) + list(zip(a.kwonlyargs, a.kw_defaults))
    if a.vararg: pairs.append((a.vararg, None))
    if a.kwarg: pairs.append((a.kwarg, None))
    un = lambda n: ast.unparse(n) if n is not None else None
    res = {arg.arg: (un(arg.annotation), un(d)) for arg, d in pairs}
    res['return'] = (un(f.returns), None)
    return res

def _fmt_anno(a) -> str:
    if a is inspect.Parameter.empty: return ''
    if isinstance(a, str): return a
    if hasattr(a, '__forward_arg__'): return a.__forward_arg__  # a NamedTuple's string annotation
    return inspect.formatannotation(a).replace('pathlib.', '').replace('typing.', '')

def _fmt_default(o) -> str:
    "A default value with no source to quote: a function by its name, anything else by a short repr."
    if callable(o) and hasattr(o, '__qualname__'): return o.__qualname__
    r = repr(o)
    return r if len(r) <= 60 else r[:57] + '...'

class TableRenderer(ShowDocRenderer):
    """`show_doc` renderer for the offline site: a heading, the signature, the docstring, and a table of
    the parameters (type, default and the docments comment), names linked to their documentation."""
    def _repr_markdown_(self):
        syms, sym = symbols(), self.sym
        src = _source_args(sym)
        dm = docments(sym, full=True, eval_str=False)
        try: params = [p for p in inspect.signature(sym).parameters.values() if p.name != 'self']
        except (ValueError, TypeError): params = []
        rows, sig = [], []
        for p in params:
            anno, dflt = src.get(p.name, (None, None))
            anno = anno or _fmt_anno(p.annotation)
            if dflt is None and p.default is not inspect.Parameter.empty: dflt = _fmt_default(p.default)
            star = '*' if p.kind is p.VAR_POSITIONAL else '**' if p.kind is p.VAR_KEYWORD else ''
            eq = ' = ' if anno else '='  # PEP 8: spaces around `=` only after an annotation
            sig.append(star + p.name + (f': {anno}' if anno else '') + (f'{eq}{dflt}' if dflt is not None else ''))
            doc = (dm.get(p.name) or {}).get('docment') or ''
            rows.append((star + p.name, anno, dflt, doc))
        ret = (src.get('return') or (None, None))[0]
        if not ret and self.sig is not None: ret = _fmt_anno(self.sig.return_annotation)
        ret_doc = (dm.get('return') or {}).get('docment') or ''
        kind = 'class ' if inspect.isclass(sym) else ''
        sig_line = f"{kind}{self.nm}({', '.join(sig)})" + (f' -> {ret}' if ret and not kind else '')
        if len(sig_line) > 90 and len(sig) > 1:
            sig_line = f"{kind}{self.nm}(\n" + ''.join(f'    {s},\n' for s in sig) + ')' + (f' -> {ret}' if ret and not kind else '')
        md = [f"{'#'*self.title_level} {self.nm}", '', '```python', sig_line, '```', '']
        if self.docs: md += [self.docs, '']
        if rows or (ret and not kind):
            md += ['|  | Type | Default | Details |', '|:--|:--|:--|:--|']
            md += [f'| `{n}` | {_code(a, syms)} | {_code(d, syms)} | {_escape_cell(c)} |'
                   for n, a, d, c in rows]
            if ret and not kind: md.append(f'| **Returns** | {_code(ret, syms)} |  | {_escape_cell(ret_doc)} |')
        return '\n'.join(md).rstrip() + '\n'

# ---------------------------------------------------------------------------------------------
# Converting a processed notebook

_re_directive = re.compile(r'^\s*#\|\s*([\w-]+):?\s*(.*?)\s*$')
_re_link = re.compile(r'\]\(([^)\s]+)\)')
_re_backticks = re.compile(r'(?<![\[\w])`([A-Za-z_][\w.]*?)(?:\(\))?`(?!\]\()')
_re_heading = re.compile(r'^(#{1,6})\s', re.MULTILINE)
KEEP_MIME = ('image/png', 'image/jpeg', 'image/svg+xml', 'image/gif', 'text/html', 'text/markdown',
             'text/latex', 'text/plain')

def _src(cell) -> str:
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else (s or '')

def _directives(src: str):
    "Split leading `#| key: value` lines off a code cell: ({key: value}, remaining source)."
    lines, d = src.splitlines(), {}
    while lines and (m := _re_directive.match(lines[0])):
        d[m.group(1)] = m.group(2).strip().strip('"\'').lower(); lines.pop(0)
    return d, '\n'.join(lines).strip('\n')

def _showdoc_md(cell) -> str:
    "The markdown a `show_doc` cell (`#| output: asis`) printed."
    return ''.join(''.join(o['data']['text/markdown']) for o in cell.get('outputs', [])
                   if 'text/markdown' in o.get('data', {}))

_re_sd_head = re.compile(r'^(#{1,6}) (\S+)')
LABEL = 'api-'  # labels of documented names: `api-learner`, never the same as a page's name (`learner`)

class Converter:
    """Convert the processed notebooks of one site (`nbs` maps notebook names to their JSON).

    Each documented name gets a label, `(api-load_fmnist)=`, that nbdev's anchor (`data.html#load_fmnist`)
    turns into; a name documented on two pages is labelled once, on the page of the module that
    exports it. A link to a name that has no section of its own (a method without a `show_doc`)
    goes to its class's section, or else to its page."""
    def __init__(self, nbs: dict, syms: Symbols, out_dir: Path):
        self.pages, self.out_dir = {n: page_name(n) for n in nbs}, Path(out_dir)
        self.syms, self.site = syms, site_url()
        seen = {}
        for n, nb in nbs.items():
            for cell in nb['cells']:
                if cell['cell_type'] == 'code' and _directives(_src(cell))[0].get('output') == 'asis':
                    if m := _re_sd_head.match(_showdoc_md(cell)): seen.setdefault(m.group(2).lower(), []).append(self.pages[n])
        self.labels = {}
        for label, pages in seen.items():
            home = (syms.syms.get(label) or '').partition('.html')[0]
            self.labels[label] = home if home in pages else pages[0]

    def _target(self, url: str) -> str | None:
        "A MyST target for a link into the site or the repository, or None if `url` is neither."
        if url.startswith(self.site + '/'): url = url[len(self.site)+1:]
        elif re.match(r'^[a-z][a-z0-9+.-]*:', url) or url.startswith('#'): return None
        path, _, anchor = url.partition('#')
        name = Path(path).name
        if name in self.pages: page = self.pages[name]  # a notebook: nbs/00_data.ipynb, 00_data.ipynb
        elif name.endswith('.html') and name[:-5] in self.pages.values(): page = name[:-5]
        else: return self._repo_file(path, anchor)
        a = anchor.lower()
        if a in self.labels: return f'#{LABEL}{a}'  # a label: Sphinx finds it on whichever page has it
        if a.split('.')[0] in self.labels: return f"#{LABEL}{a.split('.')[0]}"  # a method: its class
        # nbdev's own link to a name with no section: the page; an author's link to a heading: kept
        return f'{page}.ipynb' + (f'#{anchor}' if anchor and not name.endswith('.html') else '')

    def _repo_file(self, path, anchor):
        "A link to a file of the repository (`../LICENSE` from a lesson, `LICENSE` from the README)."
        for base in (ROOT/'nbs', ROOT):
            f = (base/path).resolve()
            if path and f.exists() and f.is_relative_to(ROOT) and not f.is_relative_to(ROOT/'nbs'):
                s = _settings()
                rel = f.relative_to(ROOT).as_posix()
                return f"{s['git_url'].rstrip('/')}/{'tree' if f.is_dir() else 'blob'}/{s['branch']}/{rel}" + \
                       (f'#{anchor}' if anchor else '')
        return None

    def links(self, md: str) -> str:
        "Point links into the site at its pages, and link backticked names miniai exports."
        def link_name(m):
            url = self.syms.url(m.group(1))
            return f'[{m.group(0)}]({url})' if url else m.group(0)
        out, fence = [], False
        for line in md.split('\n'):
            if line.lstrip().startswith(('```', '~~~')): fence = not fence
            elif not fence and not line.startswith('    '):
                # names first (the regex skips text already inside a link), then every link's target
                line = _re_backticks.sub(link_name, line)
                line = _re_link.sub(lambda m: f']({self._target(m.group(1)) or m.group(1)})', line)
            out.append(line)
        return '\n'.join(out)

    def _outputs(self, outs):
        res = []
        for o in outs:
            if o.get('output_type') in ('display_data', 'execute_result'):
                data = {k: v for k, v in o.get('data', {}).items() if k in KEEP_MIME}
                if not data: continue  # e.g. a widget, which a static page cannot run
                if len(data) > 1: data.pop('text/latex', None)
                o = {**o, 'data': data}
            res.append(o)
        return res

    def convert(self, nb: dict, name: str) -> dict:
        cells, level, page = [], 1, self.pages[name]
        def md(text, cell=None):
            for fn, data in ((cell or {}).get('attachments') or {}).items():  # pasted pictures: files
                mime, b64 = next(iter(data.items()))
                dest = Path('_attachments')/page/fn
                (self.out_dir/dest).parent.mkdir(parents=True, exist_ok=True)
                (self.out_dir/dest).write_bytes(base64.b64decode(''.join(b64) if isinstance(b64, list) else b64))
                text = text.replace(f'attachment:{fn}', dest.as_posix())
            cells.append(dict(cell_type='markdown', id=f'c{len(cells)}', metadata={}, source=text))
        for cell in nb['cells']:
            src, kind = _src(cell), cell['cell_type']
            if kind == 'raw' and src.lstrip().startswith('---'):
                import yaml
                fm = yaml.safe_load(src.strip().strip('-')) or {}
                text = f"# {fm.get('title') or page}"
                if fm.get('description'): text += f"\n\n{{.lead}}\n{fm['description']}"
                md(self.links(text)); continue
            if not src.strip() or kind == 'raw': continue
            if kind == 'markdown':
                if src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
                hs = _re_heading.findall(src)
                if hs: level = len(hs[-1])
                md(self.links(src), cell); continue
            d, code = _directives(src)
            if d.get('include') == 'false': continue
            if d.get('output') == 'asis':  # show_doc: its markdown output becomes part of the page
                text = _showdoc_md(cell)
                if not text.strip(): continue
                if m := _re_sd_head.match(text):  # nest it under the section it sits in, with its label
                    label = m.group(2).lower()
                    text = '#'*min(level+1, 6) + text[len(m.group(1)):]
                    if self.labels.get(label) == page: text = f'({LABEL}{label})=\n{text}'
                md(self.links(text)); continue
            tags = []
            if d.get('echo') == 'false': tags.append('remove-input')
            outs = [] if d.get('output') == 'false' else self._outputs(cell.get('outputs', []))
            if not code.strip() and not outs: continue
            cells.append(dict(cell_type='code', id=f'c{len(cells)}', execution_count=None,
                              metadata={'tags': tags} if tags else {}, outputs=outs, source=code))
        meta = {'kernelspec': nb.get('metadata', {}).get('kernelspec') or
                {'display_name': 'python3', 'language': 'python', 'name': 'python3'},
                'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
        return dict(cells=cells, metadata=meta, nbformat=4, nbformat_minor=5)

QUARTO_FILES = {'_quarto.yml', 'nbdev.yml', 'sidebar.yml', 'styles.css', '_brand.yml'}

def convert_all(proc_dir: Path, out_dir: Path, syms: Symbols | None = None) -> list[str]:
    "Convert every notebook in `proc_dir` into `out_dir`; returns the page names, home page first."
    proc_dir = Path(proc_dir)
    if not (proc_dir/'index.ipynb').exists(): raise FileNotFoundError(f'no index.ipynb in {proc_dir}: the home page')
    nbs = {p.name: json.loads(p.read_text(encoding='utf-8')) for p in sorted(proc_dir.glob('*.ipynb'))}
    pages = [page_name(n) for n in nbs if n != 'index.ipynb']
    if len(set(pages)) != len(pages): raise ValueError(f'two notebooks would make the same page: {sorted(nbs)}')
    out_dir.mkdir(parents=True, exist_ok=True)
    conv = Converter(nbs, syms or symbols(), out_dir)
    for n, nb in nbs.items():
        res = conv.convert(nb, n)
        if n == 'index.ipynb':  # the sidebar: every other page, in the order of the notebooks' names
            res['cells'].append(dict(cell_type='markdown', id='toctree', metadata={}, source=
                '```{toctree}\n:hidden:\n:caption: Lessons\n:maxdepth: 1\n\n' + '\n'.join(pages) + '\n```'))
        (out_dir/f'{page_name(n)}.ipynb').write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding='utf-8')
    # files the notebooks point at (pictures in nbs/, say) come along; quarto's own settings do not
    nbs_dir = ROOT/_settings().get('nbs_path', 'nbs')
    for f in nbs_dir.rglob('*'):
        rel = f.relative_to(nbs_dir)
        if (f.is_file() and f.suffix != '.ipynb' and rel.parts[0] not in QUARTO_FILES
                and not any(p.startswith(('.', '_')) for p in rel.parts)):
            (out_dir/rel).parent.mkdir(parents=True, exist_ok=True)
            (out_dir/rel).write_bytes(f.read_bytes())
    return ['index'] + pages

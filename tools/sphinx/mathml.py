"""A Sphinx math renderer that needs no JavaScript: LaTeX becomes MathML when the site is built.

Sphinx's default, MathJax, loads a script from a CDN, which an offline reader does not reach.
Browsers render MathML themselves (Chromium since version 109, Firefox and Safari for longer), so
the pages show formulas with no network and nothing to load. The conversion is `latex2mathml`'s.
"""
from docutils import nodes

def _convert(latex, display):
    try: from latex2mathml.converter import convert
    except ImportError:
        raise RuntimeError('a page has math: `pip install latex2mathml` (a dev requirement) to render it') from None
    return convert(latex.strip(), display=display)

def visit_math(self, node):
    self.body.append(f'<span class="math">{_convert(node.astext(), "inline")}</span>')
    raise nodes.SkipNode

def visit_displaymath(self, node):
    self.body.append(self.starttag(node, 'div', CLASS='math'))
    if node.get('number'):
        self.body.append(f'<span class="eqno">({node["number"]})</span>')
    self.body.append(_convert(node.astext(), 'block'))
    self.body.append('</div>\n')
    raise nodes.SkipNode

def setup(app):
    app.add_html_math_renderer('mathml', (visit_math, None), (visit_displaymath, None))
    return {'parallel_read_safe': True, 'parallel_write_safe': True}

"""What must never reach a reader: scripts, frames, styles, event handlers, javascript:/data: URLs."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

FORBIDDEN_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "style", "applet", "base",
                  "form", "meta", "link"}
PAGE_TAGS_ALLOWED = {"meta", "link"}  # a whole page has its <head>; fragments have none
BAD_URL = re.compile(r"^\s*(javascript|vbscript|data|file):", re.I)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "cite", "background", "poster", "xmlUrl",
                  "htmlUrl", "url", "srcset"}


def unsafe_html(markup: str, *, page: bool = False) -> list[str]:
    """Findings in an HTML fragment (or a whole page, which may have head <meta>/<link>)."""
    if not markup.strip():
        return []
    root = lxml.html.document_fromstring(markup) if page else lxml.html.fragment_fromstring(
        markup, create_parent="div")
    findings = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower()
        if tag in FORBIDDEN_TAGS and not (page and tag in PAGE_TAGS_ALLOWED):
            findings.append(f"<{tag}> element")
        if page and tag == "link" and (element.get("rel") or "").lower() not in ("alternate", "stylesheet"):
            findings.append(f"<link rel={element.get('rel')!r}>")
        if page and tag == "meta" and element.get("http-equiv"):
            findings.append("<meta http-equiv>")
        findings += _attribute_findings(tag, element.attrib)
    return findings


def unsafe_xml(data: bytes) -> list[str]:
    """Findings in an XML document's own elements and attributes (not its escaped HTML)."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    findings = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        local = etree.QName(element).localname.lower()
        if local in FORBIDDEN_TAGS - {"link"}:
            findings.append(f"<{local}> element in XML")
        findings += _attribute_findings(local, element.attrib)
        for url_text in ("link", "guid", "id", "docs", "url", "uri", "icon", "logo"):
            if local == url_text and BAD_URL.match(element.text or ""):
                findings.append(f"<{local}> text {element.text!r}")
    return findings


def _attribute_findings(tag: str, attributes: dict) -> list[str]:
    findings = []
    for name, value in attributes.items():
        name = etree.QName(name).localname if name.startswith("{") else name
        if name.lower().startswith("on"):
            findings.append(f"<{tag} {name}> event handler")
        if name.lower() == "style":
            findings.append(f"<{tag} style> attribute")
        if name in URL_ATTRIBUTES and BAD_URL.match(value or ""):
            findings.append(f"<{tag} {name}={value!r}>")
    return findings

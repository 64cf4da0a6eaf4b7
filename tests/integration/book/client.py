"""Small helpers the book tests share: an export's wire answer, and EPUB structure checks."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile

import aiohttp

from adapters.client import InkstreamClient
from tests.support.wire import bearer

OPF_NS = {"opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/"}
XHTML = "{http://www.w3.org/1999/xhtml}"


async def export_answer(http: aiohttp.ClientSession, ink: InkstreamClient, book_id: str,
                        fmt: str) -> tuple[bytes, aiohttp.ClientResponse]:
    """An export on the wire, for its Content-Type and Content-Disposition (the SDK answers the bytes only)."""
    async with http.get(f"/v1/books/{book_id}/export", params={"format": fmt}, headers=bearer(ink)) as r:
        data = await r.read()
        assert r.status == 200, data[:500]
    return data, r


def attachment_filename(response: aiohttp.ClientResponse) -> str:
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    found = re.search(r'filename="([^"]*)"', disposition)
    assert found, disposition
    return found.group(1)


def epub_structure(data: bytes) -> tuple[zipfile.ZipFile, ET.Element, dict[str, str]]:
    """Checks the OCF container rules and answers the archive, its package document and its manifest (id → href)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    infos = archive.infolist()
    assert infos[0].filename == "mimetype"
    assert infos[0].compress_type == zipfile.ZIP_STORED
    assert not infos[0].extra
    assert archive.read("mimetype") == b"application/epub+zip"
    container = ET.fromstring(archive.read("META-INF/container.xml"))
    rootfile = container.find(".//{urn:oasis:names:tc:opendocument:xmlns:container}rootfile")
    assert rootfile is not None and rootfile.get("media-type") == "application/oebps-package+xml"
    opf_path = rootfile.get("full-path")
    assert opf_path
    package = ET.fromstring(archive.read(opf_path))
    assert package.get("version") == "3.0"
    base = opf_path.rsplit("/", 1)[0] + "/" if "/" in opf_path else ""
    manifest = {item.get("id"): base + item.get("href") for item in package.iterfind("opf:manifest/opf:item", OPF_NS)}
    navs = [i for i in package.iterfind("opf:manifest/opf:item", OPF_NS) if "nav" in (i.get("properties") or "")]
    assert len(navs) == 1
    for path in manifest.values():
        assert path in archive.namelist(), path
    return archive, package, manifest


def spine_documents(archive: zipfile.ZipFile, package: ET.Element, manifest: dict[str, str]) -> list[ET.Element]:
    """Every spine document, parsed as XML (so each is well-formed XHTML), in reading order."""
    refs = [ref.get("idref") for ref in package.iterfind("opf:spine/opf:itemref", OPF_NS)]
    return [ET.fromstring(archive.read(manifest[ref])) for ref in refs]


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())

"""Audio transcription and translation: multipart uploads, routed by their `model` field.

The upload is read as it arrives: each piece goes to a spool (memory up to
`IN_MEMORY`, a temporary file beyond) and through a streaming multipart
parser that picks out the `model` field, wherever in the form it comes.
The spooled bytes then go to the engine a piece at a time, as the engine
takes them; an upload over `max_upload_bytes` is refused with a 413 as
soon as it passes the limit.
"""

from __future__ import annotations

import tempfile
from typing import Any

from aiohttp import web
from python_multipart.multipart import MultipartParser, parse_options_header

from sparkd.api.engine_routes import FAMILY
from sparkd.appstate import CATALOGUE, FORWARDER, SETTINGS
from sparkd.catalogue import ApiFamily
from sparkd.errors import ApiError
from sparkd.forward import Call, resolve

ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations")
IN_MEMORY = 1024 * 1024  # bytes of an upload kept in memory before it spills to a temporary file
PIECE = 64 * 1024
FIELD_LIMIT = 512  # bytes of the `model` field kept


class ModelField:
    """Finds the form's `model` field as the body streams past; keeps nothing else."""

    def __init__(self, content_type: str) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise ApiError(400, "send the audio as multipart/form-data with a boundary", "invalid_form")
        self.value: bytes | None = None
        self._name = b""
        self._header = b""
        self._capturing = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begins,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._part_ends,
            },
        )

    def feed(self, piece: bytes) -> None:
        self._parser.write(piece)

    @property
    def model(self) -> str | None:
        return self.value.decode(errors="replace").strip() if self.value is not None else None

    def _part_begins(self) -> None:
        self._name, self._header, self._capturing = b"", b"", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = data[start:end].lower()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        if self._header == b"content-disposition":
            _, options = parse_options_header(data[start:end])
            if b"filename" not in options:
                self._name = options.get(b"name", b"")

    def _headers_finished(self) -> None:
        self._capturing = self._name == b"model" and self.value is None
        if self._capturing:
            self.value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._capturing and self.value is not None and len(self.value) < FIELD_LIMIT:
            self.value += data[start:end][: FIELD_LIMIT - len(self.value)]

    def _part_ends(self) -> None:
        self._capturing = False


def add_routes(app: web.Application) -> None:
    for path in ROUTES:
        app.router.add_post(path, audio)


async def audio(request: web.Request) -> web.StreamResponse:
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"the upload is larger than {limit} bytes", "body_too_large")
    field = ModelField(request.headers.get("Content-Type", ""))
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
        size = 0
        async for piece in request.content.iter_chunked(PIECE):
            size += len(piece)
            if size > limit:
                raise ApiError(413, f"the upload is larger than {limit} bytes", "body_too_large")
            field.feed(piece)
            spool.write(piece)
        if not field.model:
            raise ApiError(400, "the form needs a `model` field", "missing_model", "model")
        model = resolve(request.app[CATALOGUE], field.model)
        if not model.serves(ApiFamily.OPENAI):
            raise ApiError(400, f"{model.id!r} does not serve OpenAI's API here", "unsupported_api", "model")
        document: dict[str, Any] = {"model": model.id}
        call = Call(FAMILY, model, request.path.removeprefix("/v1/"), document, b"", upload=spool)
        return await request.app[FORWARDER].serve(request, call)

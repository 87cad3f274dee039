"""Import uploads: streamed to disk, and stopped as soon as they pass IMPORT_MAX_UPLOAD_BYTES.

Every upload goes to a temporary file next to where the import keeps it (never into memory,
however small), so storing it is a rename. An upload over the limit is stopped while it streams:
at once when the request's Content-Length already says so, else at the first chunk past the
limit; its temporary file is closed, which deletes it, and the request is marked so that the form
says why (`upload_too_large`).
"""

import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

# Multipart framing and the form's other fields; a body larger than limit + this is too large.
FORM_OVERHEAD_BYTES = 64 * 1024


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.over_limit = content_length > settings.IMPORT_MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES

    def new_file(self, *args, **kwargs):
        if getattr(self, "over_limit", False):
            self._stop()
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > settings.IMPORT_MAX_UPLOAD_BYTES:
            self._stop()
        return super().receive_data_chunk(raw_data, start)

    def _stop(self):
        if self.request is not None:
            self.request.upload_too_large = True
        # The rest of the body is read and dropped, so the browser gets the form with the reason.
        raise StopUpload(connection_reset=False)


def store_upload(upload):
    """Move the upload (streamed to a temporary file by annotation/uploads.py) under MEDIA_ROOT/imports."""
    directory = Path(settings.MEDIA_ROOT) / "imports" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    path = directory / Path(upload.name).name
    if hasattr(upload, "temporary_file_path"):
        shutil.move(upload.temporary_file_path(), path)
    else:
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return path

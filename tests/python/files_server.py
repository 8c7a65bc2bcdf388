"""A grpcio file server (tests/protos/files/v1/files.proto) built at run time from its
FileDescriptorSet, with no generated stubs: the upstream of tests/http_body.rs, for
google.api.HttpBody downloads and uploads. Prints "files_server listening on
127.0.0.1:PORT" once it listens.

Behaviour: a file's bytes are the pattern byte i = i % 251. Download answers `size` bytes in
one HttpBody of `content_type` (default text/csv), with header metadata content-disposition
(attachment; filename="NAME"), etag, cache-control, last-modified, x-file-server, and
x-seen-if-none-match echoing the if-none-match metadata it received. StreamDownload sends
the same metadata and bytes in messages of `chunk` bytes, the first with the content type,
`delay_ms` apart,
and with fail_after > 0 ends with DATA_LOSS after that many messages. Upload and
StreamUpload answer the name, content type, size and sha256 of the bytes received, the
number of messages and the largest message's data. Echo answers its HttpBody as it came.
Submit answers the form's fields, and the size and sha256 of its files.

Usage: files_server.py DESCRIPTORS
"""
import hashlib
import sys
import time
from concurrent import futures

import grpc

import descriptor_set

SERVICE = "files.v1.Files"


def pattern(size):
    block = bytes(i % 251 for i in range(251))
    whole = block * (size // 251 + 1)
    return whole[:size]


def main() -> None:
    pool, _ = descriptor_set.load(sys.argv[1])
    cls = lambda name: descriptor_set.message_class(pool, name)  # noqa: E731
    HttpBody = cls("google.api.HttpBody")
    DownloadRequest, UploadRequest, UploadReply = (
        cls("files.v1.DownloadRequest"),
        cls("files.v1.UploadRequest"),
        cls("files.v1.UploadReply"),
    )
    SubmitRequest, SubmitReply = cls("files.v1.SubmitRequest"), cls("files.v1.SubmitReply")

    def headers(request, context):
        seen = dict(context.invocation_metadata()).get("if-none-match", "")
        return (
            ("content-disposition", f'attachment; filename="{request.name}"'),
            ("etag", '"v1"'),
            ("cache-control", "max-age=60"),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("x-file-server", "files"),
            ("x-seen-if-none-match", seen or "-"),
        )

    def download(request, context):
        context.send_initial_metadata(headers(request, context))
        return HttpBody(content_type=request.content_type or "text/csv", data=pattern(request.size))

    def stream_download(request, context):
        context.send_initial_metadata(headers(request, context))
        data = pattern(request.size)
        chunk = max(request.chunk, 1)
        for n, start in enumerate(range(0, len(data), chunk)):
            if n and request.delay_ms:
                time.sleep(request.delay_ms / 1000)
            if request.fail_after and n == request.fail_after:
                context.abort(grpc.StatusCode.DATA_LOSS, f"the disk failed after {n} messages")
            content_type = (request.content_type or "text/csv") if n == 0 else ""
            yield HttpBody(content_type=content_type, data=data[start : start + chunk])

    def summary(name, content_type, digest, size, messages, largest, consistent):
        return UploadReply(
            name=name,
            content_type=content_type,
            size=size,
            sha256=digest.hexdigest(),
            messages=messages,
            largest_message=largest,
            consistent=consistent,
        )

    def upload(request, context):
        data = request.file.data
        return summary(
            request.name, request.file.content_type, hashlib.sha256(data), len(data), 1, len(data), True
        )

    def stream_upload(requests, context):
        digest, size, messages, largest, consistent = hashlib.sha256(), 0, 0, 0, True
        first = None
        for request in requests:
            if first is None:
                first = (request.name, request.file.content_type)
            consistent = consistent and (request.name, request.file.content_type) == first
            digest.update(request.file.data)
            size += len(request.file.data)
            messages += 1
            largest = max(largest, len(request.file.data))
        name, content_type = first or ("", "")
        return summary(name, content_type, digest, size, messages, largest, consistent)

    def echo(request, context):
        return request

    def submit(request, context):
        return SubmitReply(
            shelf=request.shelf,
            title=request.title,
            copies=request.copies,
            ratings=list(request.ratings),
            author=request.meta.author,
            thumbnail_size=len(request.thumbnail),
            thumbnail_sha256=hashlib.sha256(request.thumbnail).hexdigest(),
            document_content_type=request.document.content_type,
            document_size=len(request.document.data),
            document_sha256=hashlib.sha256(request.document.data).hexdigest(),
        )

    def stream_submit(requests, context):
        thumbnail, document = hashlib.sha256(), hashlib.sha256()
        thumbnail_size = document_size = messages = largest = 0
        first, consistent, text_in_first_only, document_type = None, True, True, ""
        for request in requests:
            messages += 1
            if first is None:
                first = request
            else:
                consistent = consistent and request.shelf == first.shelf
                text = (request.title, request.copies, list(request.ratings), request.meta.author)
                text_in_first_only = text_in_first_only and text == ("", 0, [], "")
            thumbnail.update(request.thumbnail)
            document.update(request.document.data)
            thumbnail_size += len(request.thumbnail)
            document_size += len(request.document.data)
            largest = max(largest, len(request.thumbnail), len(request.document.data))
            document_type = document_type or request.document.content_type
        first = first or SubmitRequest()
        return SubmitReply(
            shelf=first.shelf,
            title=first.title,
            copies=first.copies,
            ratings=list(first.ratings),
            author=first.meta.author,
            thumbnail_size=thumbnail_size,
            thumbnail_sha256=thumbnail.hexdigest(),
            document_content_type=document_type,
            document_size=document_size,
            document_sha256=document.hexdigest(),
            messages=messages,
            largest_piece=largest,
            consistent=consistent,
            text_in_first_only=text_in_first_only,
        )

    serialize = lambda m: m.SerializeToString()  # noqa: E731
    handlers = {
        "Download": grpc.unary_unary_rpc_method_handler(
            download, request_deserializer=DownloadRequest.FromString, response_serializer=serialize
        ),
        "StreamDownload": grpc.unary_stream_rpc_method_handler(
            stream_download, request_deserializer=DownloadRequest.FromString, response_serializer=serialize
        ),
        "Upload": grpc.unary_unary_rpc_method_handler(
            upload, request_deserializer=UploadRequest.FromString, response_serializer=serialize
        ),
        "StreamUpload": grpc.stream_unary_rpc_method_handler(
            stream_upload, request_deserializer=UploadRequest.FromString, response_serializer=serialize
        ),
        "Submit": grpc.unary_unary_rpc_method_handler(
            submit, request_deserializer=SubmitRequest.FromString, response_serializer=serialize
        ),
        "StreamSubmit": grpc.stream_unary_rpc_method_handler(
            stream_submit, request_deserializer=SubmitRequest.FromString, response_serializer=serialize
        ),
        "Echo": grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=HttpBody.FromString, response_serializer=serialize
        ),
    }
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"files_server listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

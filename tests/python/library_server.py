"""A grpcio Library server (tests/protos/library/v1/library.proto) built at run time from
its FileDescriptorSet, with no generated stubs, and serving reflection of it: the upstream
of tests/shape_*.rs (output options, field selection, PATCH with a field mask, maps and
repeated messages in the query). Prints "library_server listening on 127.0.0.1:PORT" once it
listens.

Behaviour: one stored book, shelves/1/books/1, with every field set but `publisher`.
GetBook answers it (NOT_FOUND for any other name). ListBooks and StreamBooks answer
page_size books (default 1) that echo the request's format, labels, editions and chapters.
UpdateBook applies the request's update_mask to the stored book as AIP-134 says (no mask:
every field is replaced), stores and returns it.

Usage: library_server.py DESCRIPTORS
"""
import sys
from concurrent import futures

import grpc

import descriptor_set

SERVICE = "library.v1.Library"


def main() -> None:
    pool, names = descriptor_set.load(sys.argv[1])
    cls = lambda name: descriptor_set.message_class(pool, f"library.v1.{name}")  # noqa: E731
    Book, ListBooksResponse = cls("Book"), cls("ListBooksResponse")
    requests = {m: cls(f"{m}Request") for m in ("GetBook", "ListBooks", "UpdateBook")}

    stored = Book(
        name="shelves/1/books/1",
        title="The Left Hand of Darkness",
        format=1,
        page_count=304,
        available_formats=[1, 2],
    )
    stored.author.display_name = "Ursula K. Le Guin"
    stored.author.address.city = "Portland"
    stored.author.address.country_code = "US"
    stored.labels["genre"] = "sf"
    stored.editions[1969] = "Ace"
    stored.chapters.add(title="A Parade in Erhenrang", pages=20)
    state = {"book": stored}

    def get_book(request, context):
        if request.name != state["book"].name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.name}")
        return state["book"]

    def books(request):
        for i in range(max(request.page_size, 1)):
            book = Book(name=f"{request.parent}/books/{i + 1}", title=f"Book {i + 1}", format=request.format)
            book.author.display_name = f"Author {i + 1}"
            book.labels.update(request.labels)
            book.editions.update(request.editions)
            book.chapters.extend(request.chapters)
            book.page_count = 100 + i
            yield book

    def list_books(request, context):
        return ListBooksResponse(books=list(books(request)))

    def stream_books(request, context):
        yield from books(request)

    def update_book(request, context):
        if request.book.name != state["book"].name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.book.name}")
        updated = Book()
        updated.CopyFrom(state["book"])
        if request.HasField("update_mask") and request.update_mask.paths:
            if not request.update_mask.IsValidForDescriptor(Book.DESCRIPTOR):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad update_mask {list(request.update_mask.paths)}")
            request.update_mask.MergeMessage(request.book, updated, replace_message_field=True, replace_repeated_field=True)
        else:
            updated.CopyFrom(request.book)
        state["book"] = updated
        return updated

    def unary(fn, name):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=requests[name].FromString, response_serializer=lambda m: m.SerializeToString()
        )

    handlers = {
        "GetBook": unary(get_book, "GetBook"),
        "ListBooks": unary(list_books, "ListBooks"),
        "UpdateBook": unary(update_book, "UpdateBook"),
        "StreamBooks": grpc.unary_stream_rpc_method_handler(
            stream_books,
            request_deserializer=requests["ListBooks"].FromString,
            response_serializer=lambda m: m.SerializeToString(),
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    descriptor_set.add_reflection(server, pool, [SERVICE], False)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"library_server listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

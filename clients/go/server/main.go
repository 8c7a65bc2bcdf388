// A grpc-go server of MyService (proto/api.proto), as a Go team following the seed would
// write it: MyService only, with no grpc.health.v1 and no reflection. It serves the same
// three users as the Python service (services/users) and honours the same test hooks, so
// that the gateway's interop matrix (tests/interop.rs) can run one suite against both:
//
//   x-test-delay-ms: N     sleep N ms (or until the call ends) before anything else
//   x-served-by            always sent in the initial metadata ("grpc-go")
//   x-test-echo: V         initial metadata x-echo: V, trailing metadata x-echo-trailer: V
//   x-test-fail-code: N    fail with code N and the message "injected failure"
//   x-test-fail-details    with a fail code: a google.rpc.ErrorInfo detail
//                          {reason: "INJECTED", domain: "users.example"}
//
// -gzip compresses every reply with gzip (grpc.RPCCompressor), whatever the client
// offered, as grpcio's compression=Gzip does. gzip requests are accepted either way, and a
// gzip request gets a gzip reply (grpc-go answers in the request's encoding).
//
// Prints "users_server listening on HOST:PORT" once it serves (port 0 picks a free one).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"strconv"
	"time"

	"ginDemo/api"

	"github.com/golang/protobuf/ptypes/empty"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // accepts gzip requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type user struct {
	name  string
	age   int32
	email string
}

// The rows of services/users/src/users_service/data.py.
var users = map[int32]user{
	1: {"Alice", 30, "alice@example.com"},
	2: {"Bob", 25, "bob@example.com"},
	3: {"Carol", 41, "carol@example.com"},
}

type service struct{}

func (service) Health(ctx context.Context, _ *empty.Empty) (*empty.Empty, error) {
	if err := hooks(ctx); err != nil {
		return nil, err
	}
	return &empty.Empty{}, nil
}

// User answers the users in request order, skipping unknown ids; duplicates repeat.
func (service) User(ctx context.Context, req *api.UserReq) (*api.UserReply, error) {
	if err := hooks(ctx); err != nil {
		return nil, err
	}
	reply := &api.UserReply{Message: "success"}
	for _, id := range req.UserIDs {
		if u, ok := users[id]; ok {
			reply.Data = append(reply.Data, &api.User{Name: u.name, Age: u.age, Email: u.email})
		}
	}
	return reply, nil
}

func first(md metadata.MD, key string) (string, bool) {
	values := md.Get(key)
	if len(values) == 0 {
		return "", false
	}
	return values[len(values)-1], true
}

// hooks applies the test hooks in the Python service's order: delay, initial metadata,
// failure.
func hooks(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if raw, ok := first(md, "x-test-delay-ms"); ok {
		ms, err := strconv.Atoi(raw)
		if err != nil || ms < 0 || ms > 300000 {
			return status.Errorf(codes.InvalidArgument, "bad x-test-delay-ms: %q (want 0..300000)", raw)
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			// DEADLINE_EXCEEDED when the deadline passed, CANCELLED when the client left.
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	head := metadata.Pairs("x-served-by", "grpc-go")
	if echo, ok := first(md, "x-test-echo"); ok {
		head.Append("x-echo", echo)
		grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", echo))
	}
	if err := grpc.SendHeader(ctx, head); err != nil {
		return err
	}
	raw, ok := first(md, "x-test-fail-code")
	if !ok {
		return nil
	}
	code, err := strconv.Atoi(raw)
	if err != nil || code < 1 || code > 16 {
		return status.Errorf(codes.InvalidArgument, "bad x-test-fail-code: %q (want 1..16)", raw)
	}
	st := status.New(codes.Code(code), "injected failure")
	if _, details := first(md, "x-test-fail-details"); details {
		if withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "INJECTED", Domain: "users.example"}); err == nil {
			st = withDetails
		}
	}
	return st.Err()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to serve on")
	gzip := flag.Bool("gzip", false, "compress every reply with gzip")
	flag.Parse()

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *addr, err)
	}
	var options []grpc.ServerOption
	if *gzip {
		options = append(options,
			grpc.RPCCompressor(grpc.NewGZIPCompressor()),
			grpc.RPCDecompressor(grpc.NewGZIPDecompressor()))
	}
	server := grpc.NewServer(options...)
	api.RegisterMyServiceServer(server, service{})
	fmt.Printf("users_server listening on %s\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		log.Fatalf("serve: %v", err)
	}
}

// A grpc-go server that serves gRPC server reflection for every service of a
// FileDescriptorSet and implements none of them (every call answers UNIMPLEMENTED): the
// grpc-go upstream of tests/reflection_schema.rs, which compares the schema a gateway learns
// by reflection with the one it reads from the same set.
//
// No stubs are generated: each file of the set is registered with golang/protobuf's file
// registry (proto.RegisterFile, gzipped, as generated code does), and each service is
// registered with the file name as its metadata, which is what grpc-go's reflection service
// reads. grpc-go 1.33 (Debian's golang-google-grpc-dev) serves grpc.reflection.v1alpha only;
// v1 came in grpc-go 1.57. With -v1-only the same servicer answers under
// grpc.reflection.v1 instead (the two versions' messages are the same on the wire), as newer
// servers serve it: grpc-go 1.33 has no way to reach its servicer, so the server calls its
// own v1alpha service once at startup and keeps the servicer that an interceptor sees, then
// refuses v1alpha calls.
//
// Prints "reflection_server listening on HOST:PORT" once it serves (port 0 picks a free one).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	dpb "github.com/golang/protobuf/protoc-gen-go/descriptor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
)

// servicer is grpc-go's reflection servicer, caught by the interceptor on the first
// v1alpha call; v1Only then refuses v1alpha calls.
var (
	mu       sync.Mutex
	servicer rpb.ServerReflectionServer
	v1Only   bool
)

func intercept(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, "/grpc.reflection.v1alpha.") {
		mu.Lock()
		caught := servicer != nil
		if impl, ok := srv.(rpb.ServerReflectionServer); ok && !caught {
			servicer = impl
		}
		mu.Unlock()
		if caught && v1Only {
			return status.Error(codes.Unimplemented, "unknown service grpc.reflection.v1alpha.ServerReflection")
		}
	}
	return handler(srv, ss)
}

// v1Stream is a v1 call's stream as the v1alpha servicer reads and writes it.
type v1Stream struct{ grpc.ServerStream }

func (s v1Stream) Send(m *rpb.ServerReflectionResponse) error { return s.SendMsg(m) }

func (s v1Stream) Recv() (*rpb.ServerReflectionRequest, error) {
	m := new(rpb.ServerReflectionRequest)
	if err := s.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

var v1Desc = grpc.ServiceDesc{
	ServiceName: "grpc.reflection.v1.ServerReflection",
	HandlerType: (*interface{})(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "ServerReflectionInfo",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(_ interface{}, stream grpc.ServerStream) error {
			mu.Lock()
			impl := servicer
			mu.Unlock()
			if impl == nil {
				return status.Error(codes.Unavailable, "reflection servicer not caught yet")
			}
			return impl.ServerReflectionInfo(v1Stream{stream})
		},
	}},
	Metadata: "grpc/reflection/v1/reflection.proto",
}

// catchServicer makes one v1alpha call to the server at addr, so that the interceptor
// catches the servicer.
func catchServicer(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	list := &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(list); err != nil {
		return err
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return stream.CloseSend()
}

// files splits an encoded FileDescriptorSet into its files' bytes, untouched.
func files(set []byte) ([][]byte, error) {
	var out [][]byte
	for i := 0; i < len(set); {
		key, n := proto.DecodeVarint(set[i:])
		if n == 0 || key != 1<<3|2 {
			return nil, fmt.Errorf("not a FileDescriptorSet: field key %d at byte %d", key, i)
		}
		i += n
		size, n := proto.DecodeVarint(set[i:])
		if n == 0 || i+n+int(size) > len(set) {
			return nil, fmt.Errorf("not a FileDescriptorSet: bad length at byte %d", i)
		}
		i += n
		out = append(out, set[i:i+int(size)])
		i += int(size)
	}
	return out, nil
}

func gzipped(raw []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	path := flag.String("descriptors", "", "the FileDescriptorSet to serve (imports included)")
	flag.BoolVar(&v1Only, "v1-only", false, "serve grpc.reflection.v1 instead of v1alpha")
	flag.Parse()
	set, err := ioutil.ReadFile(*path)
	if err != nil {
		log.Fatal(err)
	}
	raws, err := files(set)
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer(grpc.StreamInterceptor(intercept))
	for _, raw := range raws {
		fd := &dpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			log.Fatal(err)
		}
		proto.RegisterFile(fd.GetName(), gzipped(raw))
		for _, svc := range fd.GetService() {
			name := svc.GetName()
			if fd.GetPackage() != "" {
				name = fd.GetPackage() + "." + name
			}
			server.RegisterService(&grpc.ServiceDesc{
				ServiceName: name,
				HandlerType: (*interface{})(nil),
				Metadata:    fd.GetName(),
			}, struct{}{})
		}
	}
	reflection.Register(server)
	if v1Only {
		server.RegisterService(&v1Desc, struct{}{})
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(server.Serve(listener)) }()
	if v1Only {
		if err := catchServicer(listener.Addr().String()); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("reflection_server listening on %s\n", listener.Addr())
	select {}
}

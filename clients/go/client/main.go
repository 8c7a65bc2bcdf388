// The seed's Go client (seed/python-go-grpc.md, "Go gRPC" step 3): it dials MyService,
// calls Health, then User([1,2]), and prints the reply's users as the seed does. Kept as
// close to the seed as it can be; the differences are that the address is a flag (the seed
// hard-codes localhost:50051), that Health is called first, and that the output ends with
// a newline. Built in GOPATH mode from Debian's packages (clients/go/build).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"ginDemo/api"

	"github.com/golang/protobuf/ptypes/empty"
	"google.golang.org/grpc"
)

const (
	address = "localhost:50051"
)

func main() {
	addr := flag.String("addr", address, "the MyService server, host:port")
	flag.Parse()

	// The seed dials with grpc.WithBlock and no deadline; a bound keeps a test from hanging.
	dialCtx, dialCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dialCancel()
	conn, err := grpc.DialContext(dialCtx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		log.Fatalf("did not connect: %v", err)
	}
	defer conn.Close()
	c := api.NewMyServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Health(ctx, &empty.Empty{}); err != nil {
		log.Fatalf("health failed: %v", err)
	}
	fmt.Println("health: ok")
	r, err := c.User(ctx, &api.UserReq{UserIDs: []int32{1, 2}})
	if err != nil {
		log.Fatalf("could not greet: %v", err)
	}
	fmt.Printf("gprc result: %+v\n", r.Data)
}

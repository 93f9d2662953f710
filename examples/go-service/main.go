// Command go-service is a tiny quotes API: a health route and one read endpoint.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"
)

func newMux(greeting string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /quote", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"quote": greeting})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, body any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("encode response: %v", err)
	}
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	if os.Getenv("UPSTREAM_API_TOKEN") == "" {
		log.Print("UPSTREAM_API_TOKEN is not set; upstream calls are disabled")
	}
	server := &http.Server{
		Addr:              ":" + port,
		Handler:           newMux(greeting),
		ReadHeaderTimeout: 5 * time.Second,
	}
	log.Printf("listening on %s", server.Addr)
	log.Fatal(server.ListenAndServe())
}

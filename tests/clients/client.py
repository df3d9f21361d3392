"""Python client of bgjobd. Usage: python3 client.py PORT"""
import socket
import sys


def bgjob(port, request: bytes, timeout=30.0) -> bytes:
    """Sends one request, half-closes, and reads the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def send(port, request: bytes):
    """Fire and forget over UDP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(request, ("127.0.0.1", port))


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(bgjob(port, b"upper:hello from python").decode())
    job = bgjob(port, b"queue:add:upper:queued from python").decode()
    print(bgjob(port, f"queue:get:{job}".encode()).decode())
    answer = bgjob(port, b"nosuchmodule:")
    if answer[:1] in b"45" and answer[3:4] == b":":
        print("error:", answer.decode())

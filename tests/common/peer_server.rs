//! `PEER_SERVER_PY`: the HTTP server tests use to see which source address a connection arrives from.

/// A Python HTTP server (run with the host's python3) that answers every
/// request with body `peer=<client address>\n`. Args: PORT.
pub const PEER_SERVER_PY: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(64)
print('listening', flush=True)
while True:
    c, a = s.accept()
    try:
        c.settimeout(5)
        data = b''
        while b'\r\n\r\n' not in data:
            d = c.recv(4096)
            if not d:
                break
            data += d
        body = ('peer=%s\n' % a[0]).encode()
        c.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: '
                  + str(len(body)).encode() + b'\r\nConnection: close\r\n\r\n' + body)
        print('served', a[0], flush=True)
    except Exception as e:
        print('error', e, flush=True)
    finally:
        c.close()
"#;

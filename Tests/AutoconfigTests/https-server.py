#!/usr/bin/env python3
"""A test HTTPS server on 127.0.0.1: serves DIR with CERT/KEY, writes its port to PORTFILE.
Only for the autoconfig tests (the test CA signs CERT). Usage: https-server.py DIR CERT KEY PORTFILE"""
import http.server, os, ssl, sys
root, cert, key, portfile = sys.argv[1:5]
os.chdir(root)
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
    def translate_path(self, path):
        return super().translate_path(path.split("?", 1)[0])
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(portfile + ".tmp", "w") as f: f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()

"""A Confluent-compatible Schema Registry for tests: the REST subset Quiver and
confluent-kafka's SchemaRegistryClient use, in memory, on the standard library.

    python tests/registry/server.py PORT

Endpoints: POST /subjects/{s}/versions (register; the same schema gets the same id),
POST /subjects/{s} (look a schema up), GET /subjects, GET /subjects/{s}/versions,
GET /subjects/{s}/versions/{v|latest}, GET /schemas/ids/{id}, GET /config.
Errors use the registry's JSON shape: {"error_code": 40403, "message": "..."}.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, unquote

LOCK = threading.Lock()
SCHEMAS = {}      # id -> {"schema": str, "schemaType": str}
BY_TEXT = {}      # canonical text -> id
SUBJECTS = {}     # subject -> [id, ...] (versions in order)


def canonical(schema):
    try:
        return json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return schema


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, code, message):
        self.reply(404, {"error_code": code, "message": message})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def version_entry(self, subject, version):
        sid = SUBJECTS[subject][version - 1]
        s = SCHEMAS[sid]
        return {"subject": subject, "version": version, "id": sid, "schema": s["schema"], "schemaType": s["schemaType"]}

    def do_GET(self):
        parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/") if p]
        with LOCK:
            if parts == ["subjects"]:
                return self.reply(200, sorted(SUBJECTS))
            if parts == ["config"]:
                return self.reply(200, {"compatibilityLevel": "NONE"})
            if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
                s = SCHEMAS.get(int(parts[2]))
                if s is None:
                    return self.not_found(40403, f"Schema {parts[2]} not found")
                body = {"schema": s["schema"]}
                if s["schemaType"] != "AVRO":
                    body["schemaType"] = s["schemaType"]
                return self.reply(200, body)
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                if parts[1] not in SUBJECTS:
                    return self.not_found(40401, f"Subject '{parts[1]}' not found.")
                return self.reply(200, list(range(1, len(SUBJECTS[parts[1]]) + 1)))
            if len(parts) == 4 and parts[0] == "subjects" and parts[2] == "versions":
                versions = SUBJECTS.get(parts[1])
                if not versions:
                    return self.not_found(40401, f"Subject '{parts[1]}' not found.")
                v = len(versions) if parts[3] in ("latest", "-1") else int(parts[3])
                if not 1 <= v <= len(versions):
                    return self.not_found(40402, f"Version {parts[3]} not found.")
                return self.reply(200, self.version_entry(parts[1], v))
        self.not_found(404, f"no route for GET {self.path}")

    def do_POST(self):
        parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/") if p]
        body = self.body()
        schema = body.get("schema")
        if not isinstance(schema, str):
            return self.reply(422, {"error_code": 42201, "message": "the request has no 'schema' string"})
        kind = body.get("schemaType", "AVRO")
        with LOCK:
            key = canonical(schema)
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                sid = BY_TEXT.get(key)
                if sid is None:
                    sid = len(SCHEMAS) + 1
                    SCHEMAS[sid] = {"schema": schema, "schemaType": kind}
                    BY_TEXT[key] = sid
                versions = SUBJECTS.setdefault(parts[1], [])
                if sid not in versions:
                    versions.append(sid)
                return self.reply(200, {"id": sid})
            if len(parts) == 2 and parts[0] == "subjects":
                sid = BY_TEXT.get(key)
                versions = SUBJECTS.get(parts[1], [])
                if sid is None or sid not in versions:
                    return self.not_found(40403, "Schema not found")
                return self.reply(200, self.version_entry(parts[1], versions.index(sid) + 1))
        self.not_found(404, f"no route for POST {self.path}")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()

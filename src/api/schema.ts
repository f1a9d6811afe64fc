/** GET /v1/schema: tessia-compatible, keyed by API path (relative to /v1). */
export function apiSchema() {
  return {
    '/': { description: 'api root', methods: { GET: 'returns {"success": true}' } },
    '/schema': { description: 'this document', methods: { GET: 'API paths and what they do' } },
    '/openapi.json': { description: 'the OpenAPI 3.1 description of the API', methods: { GET: 'the document' } },
    '/tasks': {
      description: 'tasks',
      methods: {
        GET: 'list tasks in creation order (?order=newest: the newest first) as [{taskId, state}]; ?view=full for every field; limit and after for pages (Link rel="next")',
        POST: 'start a task: body {"machine": string, "parameters": any}; 201 with the task',
      },
    },
    '/machines': { description: 'machines', methods: { GET: 'the machines new tasks may run: [{name, description, kind}]' } },
    '/tasks/{taskId}': {
      description: 'one task',
      methods: { GET: 'the task', DELETE: 'forget the task (a running one is stopped first)' },
    },
    '/tasks/{taskId}/logs': {
      description: "the task's journal entries, streamed (chunked NDJSON; text and SSE on request)",
      methods: {
        GET: 'query: follow, after (cursor), tail, since, until, priority, fields, trusted, format=ndjson|text|sse',
      },
    },
    '/tasks/{taskId}/files': {
      description: "the task's working directory, also after it ended",
      methods: { GET: '{"files": [{path, type, size, modified}], "truncated": bool}: its regular files and directories' },
    },
    '/tasks/{taskId}/files/{path}': {
      description: "one regular file of the task's working directory",
      methods: { GET: 'the bytes (application/octet-stream, an attachment); Range: bytes=a-b for a part (206)' },
    },
    '/tasks/{taskId}/stop': {
      description: 'stop a task',
      methods: { POST: 'first call: SIGTERM, cleanup, SIGKILL after the grace period; second call: SIGKILL now' },
    },
  };
}

/** GET /v1/schema: tessia-compatible, keyed by API path (relative to /v1). */
export function apiSchema() {
  return {
    '/': { description: 'api root', methods: { GET: 'returns {"success": true}' } },
    '/schema': { description: 'this document', methods: { GET: 'API paths and what they do' } },
    '/openapi.json': { description: 'the OpenAPI 3.1 description of the API', methods: { GET: 'the document' } },
    '/tasks': {
      description: 'tasks',
      methods: {
        GET: 'list tasks in creation order as [{taskId, state}]; ?view=full for every field; limit and after for pages (Link rel="next")',
        POST: 'start a task: body {"machine": string, "parameters": any}; 201 with the task',
      },
    },
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
    '/tasks/{taskId}/stop': {
      description: 'stop a task',
      methods: { POST: 'first call: SIGTERM, cleanup, SIGKILL after the grace period; second call: SIGKILL now' },
    },
  };
}

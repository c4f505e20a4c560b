-- Least privilege: `batches:read` (batch status) is a scope of its own, apart from
-- `products:delete` (deletions and dry runs). Tokens issued before it existed could read batch
-- status with `products:delete`, so they keep doing so: each of them gets `batches:read` too.
UPDATE store_tokens
   SET scopes = array_append(scopes, 'batches:read')
 WHERE 'products:delete' = ANY (scopes) AND NOT ('batches:read' = ANY (scopes));

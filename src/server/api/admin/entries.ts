// Registration entries: CRUD, batch create/delete and filtered, paginated listing.
import type { FastifyInstance } from 'fastify';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { httpStatusFor } from '../../../spiffe/http-status.js';
import { parseSpiffeId } from '../../../spiffe/id.js';
import type { BatchResult, EntryFilter, RegistrationEntry, SelectorMatch } from '../../datastore/types.js';
import type { AdminDeps } from './deps.js';
import {
  type EntryInput,
  entryFromInput,
  entryToView,
  entryUpdateFromInput,
  selectorsFromInput,
} from './entry-codec.js';
import { errorBody, parsePage } from './errors.js';
import { entryInputSchema, entryView, errorView, idParam, MAX_BATCH, pageProperties } from './schemas.js';

const MATCH_MODES: readonly SelectorMatch[] = ['exact', 'subset', 'superset', 'any'];

interface ListQuery {
  spiffe_id?: string;
  parent_id?: string;
  selector?: string | string[];
  match?: string;
  page_size?: string;
  page_token?: string;
}

export async function entryRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { store, ca, logger } = deps;
  const context = () => ({
    trustDomain: ca.trustDomain,
    nowMs: deps.clock.nowMs(),
    minSvidTtlMs: deps.minSvidTtlMs,
  });

  app.get<{ Querystring: ListQuery }>(
    '/v1/entries',
    {
      schema: {
        tags: ['entries'],
        summary: 'List entries, filtered and paginated',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            spiffe_id: { type: 'string' },
            parent_id: { type: 'string' },
            selector: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
            match: { type: 'string' },
            ...pageProperties,
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const filter: { -readonly [K in keyof EntryFilter]: EntryFilter[K] } = {};
      // Parsed, not passed through: an invalid ID would match nothing and answer 200 [].
      if (q.spiffe_id !== undefined) filter.spiffeId = parseSpiffeId(q.spiffe_id, 'spiffe_id').toString();
      if (q.parent_id !== undefined) filter.parentId = parseSpiffeId(q.parent_id, 'parent_id').toString();
      if (q.selector !== undefined) {
        const raw = Array.isArray(q.selector) ? q.selector : [q.selector];
        const match = (q.match ?? 'exact') as SelectorMatch;
        if (!MATCH_MODES.includes(match)) {
          throw new SigilError(
            'ERR_INPUT_INVALID',
            `match: must be one of ${MATCH_MODES.join(', ')} (got ${quote(q.match)})`,
            {
              field: 'match',
            },
          );
        }
        filter.selectors = { selectors: selectorsFromInput(raw, 'selector'), match };
      } else if (q.match !== undefined) {
        throw new SigilError('ERR_INPUT_INVALID', 'match: only meaningful together with selector', {
          field: 'match',
        });
      }
      const page = await store.listEntries(filter, parsePage(q));
      return {
        entries: page.items.map(entryToView),
        ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}),
      };
    },
  );

  app.post<{ Body: EntryInput }>(
    '/v1/entries',
    {
      schema: {
        tags: ['entries'],
        summary: 'Create an entry',
        body: { ...entryInputSchema, required: ['spiffe_id', 'selectors'] },
        response: { 201: { type: 'object', properties: { entry: entryView } }, 409: errorView },
      },
    },
    async (request, reply) => {
      const entry = await store.createEntry(entryFromInput(request.body, context()));
      logger.info({ entryId: entry.id, spiffeId: entry.spiffeId, parentId: entry.parentId }, 'Entry created');
      return reply.code(201).send({ entry: entryToView(entry) });
    },
  );

  app.post<{ Body: { entries: EntryInput[] } }>(
    '/v1/entries/batch-create',
    {
      schema: {
        tags: ['entries'],
        summary: 'Create several entries; each succeeds or fails on its own',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['entries'],
          properties: {
            entries: { type: 'array', items: entryInputSchema, minItems: 1, maxItems: MAX_BATCH },
          },
        },
      },
    },
    async (request) => {
      // Validate every item first; only the valid ones reach the store, in one call.
      const checking = context();
      const parsed = request.body.entries.map((input, i): BatchResult<ReturnType<typeof entryFromInput>> => {
        try {
          return { ok: true, value: entryFromInput(input, checking, `entries[${i}]`) };
        } catch (err) {
          if (err instanceof SigilError) return { ok: false, error: err };
          throw err;
        }
      });
      const valid = parsed.flatMap((p) => (p.ok ? [p.value] : []));
      const stored = await store.createEntries(valid);
      let next = 0;
      const results = parsed.map((p) => {
        const result: BatchResult<RegistrationEntry> = p.ok ? stored[next++]! : p;
        return result.ok
          ? { status: 201, entry: entryToView(result.value) }
          : { status: httpStatusFor(result.error.code), ...errorBody(result.error) };
      });
      logger.info(
        { created: results.filter((r) => r.status === 201).length, requested: parsed.length },
        'Entries batch-created',
      );
      return { results };
    },
  );

  app.post<{ Body: { ids: string[] } }>(
    '/v1/entries/batch-delete',
    {
      schema: {
        tags: ['entries'],
        summary: 'Delete several entries by id',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ids'],
          properties: {
            ids: {
              type: 'array',
              items: { type: 'string', maxLength: 64 },
              minItems: 1,
              maxItems: MAX_BATCH,
            },
          },
        },
      },
    },
    async (request) => {
      const results = await store.deleteEntries(request.body.ids);
      logger.info({ deleted: results.filter((r) => r.ok).length }, 'Entries batch-deleted');
      return {
        results: results.map((r, i) => {
          const id = request.body.ids[i]!;
          return r.ok
            ? { id, status: 200 }
            : { id, status: httpStatusFor(r.error.code), ...errorBody(r.error) };
        }),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/entries/:id',
    { schema: { tags: ['entries'], summary: 'Show one entry', params: idParam } },
    async (request) => ({ entry: entryToView(await store.fetchEntry(request.params.id)) }),
  );

  app.patch<{ Params: { id: string }; Body: EntryInput }>(
    '/v1/entries/:id',
    {
      schema: {
        tags: ['entries'],
        summary: 'Change some fields of an entry',
        params: idParam,
        body: { ...entryInputSchema, minProperties: 1 },
      },
    },
    async (request) => {
      if (request.body.id !== undefined) {
        throw new SigilError('ERR_INPUT_INVALID', 'body.id: an entry id cannot be changed', {
          field: 'body.id',
        });
      }
      const entry = await store.updateEntry(request.params.id, entryUpdateFromInput(request.body, context()));
      logger.info({ entryId: entry.id, revision: entry.revision }, 'Entry updated');
      return { entry: entryToView(entry) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/entries/:id',
    { schema: { tags: ['entries'], summary: 'Delete an entry', params: idParam } },
    async (request) => {
      const entry = await store.deleteEntry(request.params.id);
      logger.info({ entryId: entry.id, spiffeId: entry.spiffeId }, 'Entry deleted');
      return { entry: entryToView(entry) };
    },
  );
}

// Error bodies and the fastify error handler for the admin API: every failure is
// {"error": {code, message, field?}} with the status from spiffe/http-status.ts; internals stay in the log.
import type { FastifyError, FastifyInstance } from 'fastify';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { httpStatusFor, isInternalHttpStatus } from '../../../spiffe/http-status.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from '../../datastore/types.js';

const INTERNAL_MESSAGE = 'internal error; see the server log';

/** What the caller is told: the code always; the message only when it is not about our internals. */
export function errorBody(err: SigilError): { error: { code: string; message: string; field?: string } } {
  if (isInternalHttpStatus(httpStatusFor(err.code))) {
    return { error: { code: err.code, message: INTERNAL_MESSAGE } };
  }
  return { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
}

export function parsePage(query: { page_size?: string; page_token?: string }): Page {
  let pageSize = DEFAULT_PAGE_SIZE;
  if (query.page_size !== undefined) {
    pageSize = Number(query.page_size);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `page_size: must be a whole number from 1 to ${MAX_PAGE_SIZE} (got ${quote(query.page_size)})`,
        { field: 'page_size' },
      );
    }
  }
  return { pageSize, ...(query.page_token ? { pageToken: query.page_token } : {}) };
}

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Rewrites a schema failure as "<path>: <rule>", naming an unknown field outright. */
function describeValidation(error: FastifyError): { message: string; field: string } {
  const first = (error.validation as AjvError[] | undefined)?.[0];
  const context = error.validationContext ?? 'body';
  if (!first) return { message: error.message, field: context };
  const at = `${context}${first.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
  switch (first.keyword) {
    case 'additionalProperties':
      return {
        message: `${at}: unknown field ${quote(first.params.additionalProperty)}`,
        field: `${at}.${String(first.params.additionalProperty)}`,
      };
    case 'required':
      return {
        message: `${at}.${String(first.params.missingProperty)}: is required`,
        field: `${at}.${String(first.params.missingProperty)}`,
      };
    default:
      return { message: `${at}: ${first.message ?? 'is invalid'}`, field: at };
  }
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | SigilError, request, reply) => {
    if (err instanceof SigilError) {
      const status = httpStatusFor(err.code);
      // `err` through pino's serializer: the stack and every `cause` below it, not just the message.
      if (status >= 500) request.log.error({ err }, 'Admin request failed');
      else request.log.info({ code: err.code, field: err.field }, 'Admin request refused');
      return reply.code(status).send(errorBody(err));
    }
    if (err.validation) {
      const { message, field } = describeValidation(err);
      return reply.code(400).send({ error: { code: 'ERR_INPUT_INVALID', message, field } });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        error: { code: 'ERR_INPUT_INVALID', message: `body: larger than the limit (${err.message})` },
      });
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      // Fastify's own client errors: malformed JSON, bad content type, empty body.
      return reply
        .code(err.statusCode)
        .send({ error: { code: 'ERR_INPUT_INVALID', message: `body: ${err.message}` } });
    }
    request.log.error({ err }, 'Admin request failed');
    return reply.code(500).send({ error: { code: 'ERR_INTERNAL', message: INTERNAL_MESSAGE } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: 'ERR_NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]}; see /docs`,
      },
    }),
  );
}

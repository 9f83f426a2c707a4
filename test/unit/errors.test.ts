// The error codes are a stable, documented list, and each maps to a sensible HTTP status.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isLoomError, LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';

describe('error codes', () => {
  it('documents every code with a sentence', () => {
    for (const [code, description] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^LOOM_ERR_[A-Z_]+$/);
      expect(description.length).toBeGreaterThan(20);
      expect(description.trim().endsWith('.')).toBe(true);
    }
  });

  it('uses only documented codes in the sources', () => {
    const files = [
      'coordinator/rounds/round.ts',
      'coordinator/jobs/job-service.ts',
      'coordinator/integrity/store-check.ts',
      'coordinator/gateway/agent-gateway.ts',
      'coordinator/api/errors.ts',
      'edge-agent/agent.ts',
      'shared/protocol/codec.ts',
      'coordinator/rollouts/rollout-service.ts',
      'coordinator/rollouts/retirement-service.ts',
      'coordinator/api/rollouts-routes.ts',
      'edge-agent/inference/app.ts',
      'edge-agent/inference/model-server.ts',
    ];
    for (const file of files) {
      const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
      for (const [code] of text.matchAll(/LOOM_ERR_[A-Z_]+/g)) {
        expect(Object.keys(ERROR_CODES), `${file} uses ${code}`).toContain(code);
      }
    }
  });

  it('carries code, cause and an HTTP status, and serialises without internals', () => {
    const cause = new Error('disk');
    const err = new LoomError('LOOM_ERR_NOT_FOUND', 'model x does not exist', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('LoomError');
    expect(err.cause).toBe(cause);
    expect(err.httpStatus).toBe(404);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: 'LOOM_ERR_NOT_FOUND',
      message: 'model x does not exist',
    });
    expect(isLoomError(err, 'LOOM_ERR_NOT_FOUND')).toBe(true);
    expect(isLoomError(err, 'LOOM_ERR_CONFLICT')).toBe(false);
    expect(isLoomError(new Error('x'))).toBe(false);
  });

  it('maps bad input to 4xx and everything else to 500', () => {
    const status = (code: LoomErrorCode): number => new LoomError(code, 'm').httpStatus;
    expect(status('LOOM_ERR_INVALID_ARGUMENT')).toBe(400);
    expect(status('LOOM_ERR_UNAUTHORIZED')).toBe(401);
    expect(status('LOOM_ERR_FORBIDDEN')).toBe(403);
    expect(status('LOOM_ERR_CONFLICT')).toBe(409);
    expect(status('LOOM_ERR_STORE')).toBe(500);
    expect(status('LOOM_ERR_INTERNAL')).toBe(500);
  });
});

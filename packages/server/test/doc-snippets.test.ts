import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBody, deliveryHeaders } from '../src/core/signing.js';

/**
 * The verification snippets of docs/receiving-webhooks.md, in Python, Go, Ruby and PHP, run as
 * written against deliveries signed by Herald's own code: customers copy them, so each must
 * accept what Herald sends and refuse what it did not. Each snippet is cut from the document,
 * wrapped in a few lines that read one case from stdin and print `ok:<event>` or `err:<reason>`.
 * Runtimes come from Debian (scripts/install-snippet-runtimes.sh); CI fails without them, a
 * local run skips the missing ones and says so.
 */
const doc = readFileSync(new URL('../../../docs/receiving-webhooks.md', import.meta.url), 'utf8');

function snippet(lang: string): string {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(doc);
  if (!m) throw new Error(`docs/receiving-webhooks.md has no ${lang} snippet`);
  return m[1]!;
}

const has = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0 || spawnSync(cmd, ['version'], { stdio: 'ignore' }).status === 0;

interface Case {
  body: string; // base64 of the exact bytes
  headers: Record<string, string>; // lower-case names, as a framework hands them over
  secret: string;
}

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const DATA = '{"id":"gen_42","title":"Caf\u00e9 \u2603 \ud83d\ude80","text":"line\u2028sep","n":12345678901234567890,"x":1.0}';

function signed(opts: { data?: string; timestampSec?: number; secret?: string } = {}): { body: Buffer; headers: Record<string, string> } {
  const deliveryId = 'dlv_0000000000doc0snippets00';
  const body = buildBody({ eventType: 'content.generated', createdAt: Date.now(), deliveryId, data: opts.data ?? DATA });
  const headers = deliveryHeaders(
    { eventType: 'content.generated', deliveryId, attemptNo: 1, timestampSec: opts.timestampSec ?? Math.floor(Date.now() / 1000), secret: opts.secret ?? SECRET, custom: {} },
    body,
  );
  return { body, headers };
}

const asCase = (body: Buffer, headers: Record<string, string>, secret = SECRET): Case => ({ body: body.toString('base64'), headers, secret });
const withoutStandard = (h: Record<string, string>): Record<string, string> => {
  const { 'webhook-signature': _s, 'webhook-id': _i, 'webhook-timestamp': _t, ...rest } = h;
  return rest;
};

/** What every snippet must answer, as `ok` or the start of its error message. */
const CASES: Array<[string, () => Case, string]> = [
  ['both signatures', () => { const s = signed(); return asCase(s.body, s.headers); }, 'ok:content.generated'],
  ['X-Hub-Signature-256 alone (a replay could strip the rest)', () => { const s = signed(); return asCase(s.body, withoutStandard(s.headers)); }, 'err:missing webhook-signature'],
  ['several webhook-signature entries, one of them right', () => {
    const s = signed();
    return asCase(s.body, { ...s.headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${s.headers['webhook-signature']}` });
  }, 'ok:content.generated'],
  ['a body changed by one byte', () => { const s = signed(); const b = Buffer.from(s.body); b[b.length - 2] ^= 1; return asCase(b, s.headers); }, 'err:signature mismatch'],
  ['the body parsed and serialised again', () => { const s = signed(); return asCase(Buffer.from(JSON.stringify(JSON.parse(s.body.toString('utf8')))), s.headers); }, 'err:signature mismatch'],
  // Secrets are any text of 16–256 characters: keyed by their UTF-8 bytes, not one byte per character.
  ['a secret with characters outside ASCII', () => { const secret = 'whsec_café-€-0123456789'; const s = signed({ secret }); return asCase(s.body, s.headers, secret); }, 'ok:content.generated'],
  ['another secret', () => { const s = signed({ secret: 'whsec_someone_else' }); return asCase(s.body, s.headers); }, 'err:signature mismatch'],
  ['a timestamp an hour old, correctly signed', () => { const s = signed({ timestampSec: Math.floor(Date.now() / 1000) - 3600 }); return asCase(s.body, s.headers); }, 'err:timestamp outside tolerance'],
  ['a timestamp that is not a number', () => { const s = signed(); return asCase(s.body, { ...s.headers, 'webhook-timestamp': '12a' }); }, 'err:bad webhook-timestamp'],
];

interface Runtime {
  lang: string;
  cmd: string;
  file: string;
  source: () => string;
  /** Compile once (Go); returns the command line to run a case. */
  prepare?: (dir: string) => string[];
  run: (dir: string) => string[];
}

const RUNTIMES: Runtime[] = [
  {
    lang: 'python', cmd: 'python3', file: 'verify.py',
    source: () => `${snippet('python')}
import sys
class Headers(dict):
    def get(self, name, default=None):
        return super().get(name.lower(), default)
case = json.load(sys.stdin)
try:
    event = verify(base64.b64decode(case["body"]), Headers(case["headers"]), case["secret"])
    print("ok:" + event["event"])
except Exception as e:
    print("err:" + str(e))
`,
    run: (dir) => ['python3', join(dir, 'verify.py')],
  },
  {
    lang: 'go', cmd: 'go', file: 'main.go',
    // Imports must come first: the wrapper's, then the snippet's own block, then main.
    source: () => `package main

import (
	"encoding/json"
	"fmt"
	"os"
)

${snippet('go')}
func main() {
	var c struct {
		Body    string            \`json:"body"\`
		Headers map[string]string \`json:"headers"\`
		Secret  string            \`json:"secret"\`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil {
		panic(err)
	}
	body, _ := base64.StdEncoding.DecodeString(c.Body)
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	if err := verify(body, h, c.Secret, 5*time.Minute); err != nil {
		fmt.Println("err:" + err.Error())
		return
	}
	var ev struct {
		Event string \`json:"event"\`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		fmt.Println("err:" + err.Error())
		return
	}
	fmt.Println("ok:" + ev.Event)
}
`,
    prepare: (dir) => ['go', 'build', '-o', join(dir, 'verify'), join(dir, 'main.go')],
    run: (dir) => [join(dir, 'verify')],
  },
  {
    lang: 'ruby', cmd: 'ruby', file: 'verify.rb',
    source: () => `${snippet('ruby')}
c = JSON.parse($stdin.read)
begin
  event = verify(c["body"].unpack1("m"), c["headers"], c["secret"])
  puts "ok:" + event["event"]
rescue => e
  puts "err:" + e.message
end
`,
    run: (dir) => ['ruby', join(dir, 'verify.rb')],
  },
  {
    lang: 'php', cmd: 'php', file: 'verify.php',
    source: () => `<?php
${snippet('php')}
$c = json_decode(file_get_contents('php://stdin'), true);
try {
    $event = verify(base64_decode($c['body']), $c['headers'], $c['secret']);
    echo "ok:" . $event['event'] . "\\n";
} catch (Throwable $e) {
    echo "err:" . $e->getMessage() . "\\n";
}
`,
    run: (dir) => ['php', join(dir, 'verify.php')],
  },
];

const dir = mkdtempSync(join(tmpdir(), 'herald-doc-snippets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const rt of RUNTIMES) {
  const present = has(rt.cmd);
  if (!present && !process.env.CI) console.warn(`doc-snippets: ${rt.cmd} not found, the ${rt.lang} snippet is not run (scripts/install-snippet-runtimes.sh installs it; CI fails instead)`);
  const suite = present || process.env.CI ? describe : describe.skip;
  suite(`the ${rt.lang} snippet of docs/receiving-webhooks.md`, () => {
    const here = join(dir, rt.lang);
    beforeAll(() => {
      if (!present) throw new Error(`${rt.cmd} is missing and CI is set: run scripts/install-snippet-runtimes.sh before the tests`);
      mkdirSync(here, { recursive: true });
      writeFileSync(join(here, rt.file), rt.source());
      if (rt.prepare) {
        const [cmd, ...args] = rt.prepare(here);
        const r = spawnSync(cmd!, args, { encoding: 'utf8', env: { ...process.env, GOCACHE: join(dir, 'gocache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off' } });
        if (r.status !== 0) throw new Error(`${rt.lang} snippet does not build:\n${r.stderr}`);
      }
    }, 120_000);

    it.each(CASES)('%s', (_name, make, expected) => {
      const [cmd, ...args] = rt.run(here);
      const r = spawnSync(cmd!, args, { input: JSON.stringify(make()), encoding: 'utf8', timeout: 30_000 });
      expect(r.stderr, `${rt.lang} wrote to stderr`).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(expected);
    });
  });
}

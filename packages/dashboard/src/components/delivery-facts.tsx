import type { Meta } from '../api';
import { retryPolicyText } from '../format';
import { IconClock, IconGlobe } from './icons';
import { CopyButton } from './ui';

/**
 * Where a customer configuring a firewall looks: the addresses Herald sends from, and what
 * happens when their endpoint is down.
 */
export function EgressInfo({ meta, compact }: { meta: Meta | null; compact?: boolean }) {
  if (!meta) return null;
  const ranges = meta.egress_ip_ranges;
  return (
    <div class={`facts ${compact ? 'facts-compact' : ''}`} aria-label="Firewall and retry information" role="group">
      <div class="fact">
        <IconGlobe class="fact-icon" />
        <div>
          <p class="fact-title">Outgoing IP addresses</p>
          {ranges.length ? (
            <>
              <p class="fact-text">If your endpoint is behind a firewall, allow requests from these ranges:</p>
              <ul class="ip-list" aria-label="Outgoing IP ranges">
                {ranges.map((r) => (
                  <li key={r} class="mono">{r}</li>
                ))}
              </ul>
              <CopyButton text={() => ranges.join('\n')} label="Copy ranges" variant="ghost" />
            </>
          ) : (
            <p class="fact-text">
              This Herald does not send from fixed IP addresses, so allow-listing by IP is not possible. Verify each request's signature
              instead.
            </p>
          )}
        </div>
      </div>
      <div class="fact">
        <IconClock class="fact-icon" />
        <div>
          <p class="fact-title">Timeouts and retries</p>
          <p class="fact-text">{retryPolicyText(meta)}</p>
          <p class="fact-text">An answer of 410 Gone turns the webhook off. Redirects are not followed.</p>
        </div>
      </div>
    </div>
  );
}

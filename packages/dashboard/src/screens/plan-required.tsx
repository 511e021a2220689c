import type { Account, Meta } from '../api';
import { roughDuration } from '../format';
import { IconCheck, IconLock } from '../components/icons';
import { PageHeader } from '../components/layout';

/** A free account sees what webhooks would give it and how to get them, not a form that fails. */
export function PlanRequired({ account, meta }: { account: Account; meta: Meta | null }) {
  const span = meta && meta.retry_schedule_ms.length ? roughDuration(meta.retry_schedule_ms.reduce((a, b) => a + b, 0)) : null;
  return (
    <>
      <PageHeader
        crumbs={[{ label: 'Webhooks' }]}
        title="Webhooks"
        description="Get notified in your own systems the moment something happens in your account."
      />
      <section class="card upsell" aria-labelledby="upsell-title">
        <div class="upsell-icon" aria-hidden="true">
          <IconLock />
        </div>
        <div class="upsell-body">
          <p class="eyebrow">Available on Pro and Enterprise</p>
          <h2 id="upsell-title" class="upsell-title">Webhooks are not included in the Free plan</h2>
          <p class="upsell-text">
            <strong>{account.name}</strong> is on the Free plan. Upgrade to Pro or Enterprise to send events to your own endpoints in real time.
          </p>
          <ul class="benefits">
            <li><IconCheck /> Real-time HTTP notifications for content, analysis and publishing events</li>
            <li><IconCheck /> Signed requests, so your endpoint can verify they come from us</li>
            <li><IconCheck /> Automatic retries{span ? ` for ${span}` : ''} when your endpoint is down</li>
            <li><IconCheck /> A full history of every delivery, with one-click redelivery</li>
          </ul>
          <p class="upsell-text muted">To upgrade, open <em>Settings › Account › Billing</em> in your app, or contact your account manager.</p>
        </div>
      </section>
    </>
  );
}

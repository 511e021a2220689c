import type { AnchorHTMLAttributes, ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { DeliveryStatus } from '../api';
import { STATUS_LABEL } from '../format';
import { onLinkClick } from '../router';
import { IconAlert, IconCheck, IconClock, IconCopy, IconInfo, IconRefresh, IconX } from './icons';

/**
 * Building blocks. Everything a receiver or a user typed is rendered as JSX text, which
 * Preact writes with textContent: there is no innerHTML anywhere in this app.
 */

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: 'primary' | 'secondary' | 'ghost' | 'danger' | 'danger-ghost';
  size?: 'sm' | 'md';
  busy?: boolean;
};

/**
 * While busy a button is aria-disabled, not disabled: Chromium takes the focus away from a
 * button that becomes disabled (to <body>), so a keyboard user who pressed Save or Test
 * Connection would have to find their place again. A busy button ignores clicks instead; for a
 * submit button that also stops the form being sent twice (Enter in a field clicks it too).
 */
export function Button({ variant = 'secondary', size = 'md', busy, class: cls, children, disabled, type, onClick, ...rest }: ButtonProps) {
  return (
    <button
      type={(type as 'button' | 'submit' | undefined) ?? 'button'}
      class={`btn btn-${variant} btn-${size} ${busy ? 'is-busy' : ''} ${cls ?? ''}`}
      disabled={disabled}
      aria-disabled={busy ? 'true' : undefined}
      aria-busy={busy ? 'true' : undefined}
      onClick={(e) => (busy ? e.preventDefault() : onClick?.call(e.currentTarget, e))}
      {...rest}
    >
      {busy && <span class="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}

/**
 * Focus an element once the render in progress has put it on the page: for giving focus back
 * to the button that opened a panel, which reappears as the panel closes.
 */
export function focusSoon(id: string): void {
  window.setTimeout(() => document.getElementById(id)?.focus(), 0);
}

export function Link({ href, class: cls, children, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  return (
    <a href={href} class={cls} onClick={(e) => onLinkClick(e as unknown as MouseEvent, href)} {...rest}>
      {children}
    </a>
  );
}

export function Card({ title, description, actions, children, class: cls, id, headingLevel = 2 }: {
  title?: ComponentChildren;
  description?: ComponentChildren;
  actions?: ComponentChildren;
  children?: ComponentChildren;
  class?: string;
  id?: string;
  headingLevel?: 2 | 3;
}) {
  const H = headingLevel === 2 ? 'h2' : 'h3';
  return (
    <section class={`card ${cls ?? ''}`} aria-labelledby={title && id ? `${id}-title` : undefined} id={id}>
      {(title || actions) && (
        <header class="card-header">
          <div>
            {title && <H class="card-title" id={id ? `${id}-title` : undefined}>{title}</H>}
            {description && <p class="card-description">{description}</p>}
          </div>
          {actions && <div class="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

/** `attempts` tells a fresh pending delivery (queued) from one that failed and waits for a retry. */
export function StatusBadge({ status, attempts = 0 }: { status: DeliveryStatus; attempts?: number }) {
  const retrying = status === 'pending' && attempts > 0;
  const Icon = status === 'succeeded' ? IconCheck : status === 'failed' ? IconX : retrying ? IconRefresh : IconClock;
  return (
    <span class={`badge badge-${retrying ? 'retrying' : status}`}>
      <Icon />
      {retrying ? 'Retrying' : STATUS_LABEL[status]}
    </span>
  );
}

export function Badge({ tone = 'neutral', children }: { tone?: 'neutral' | 'brand' | 'success' | 'danger' | 'warning'; children: ComponentChildren }) {
  return <span class={`badge badge-${tone}`}>{children}</span>;
}

/**
 * An on/off switch: a real button with role=switch, so Space and Enter work and screen readers
 * say "on"/"off". While busy it is aria-disabled and ignores presses, keeping the focus (see Button).
 */
export function Switch({ checked, onChange, label, disabled, busy }: { checked: boolean; onChange: (v: boolean) => void; label: string; disabled?: boolean; busy?: boolean }) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked ? 'true' : 'false'}
      aria-label={label}
      class={`switch ${checked ? 'is-on' : ''} ${busy ? 'is-busy' : ''}`}
      disabled={disabled}
      aria-disabled={busy ? 'true' : undefined}
      aria-busy={busy ? 'true' : undefined}
      onClick={() => busy || onChange(!checked)}
    >
      <span class="switch-thumb" aria-hidden="true" />
    </button>
  );
}

export function Notice({ tone = 'info', title, children, class: cls, role }: {
  tone?: 'info' | 'success' | 'warning' | 'danger';
  title?: ComponentChildren;
  children?: ComponentChildren;
  class?: string;
  role?: 'alert' | 'status';
}) {
  const Icon = tone === 'success' ? IconCheck : tone === 'info' ? IconInfo : IconAlert;
  return (
    <div class={`notice notice-${tone} ${cls ?? ''}`} role={role}>
      <Icon class="notice-icon" />
      <div class="notice-body">
        {title && <p class="notice-title">{title}</p>}
        {children}
      </div>
    </div>
  );
}

/** Copies text and says so, for sighted users (label) and screen readers (live region). */
export function CopyButton({ text, label = 'Copy', size = 'sm', variant = 'secondary' }: { text: () => string | Promise<string>; label?: string; size?: 'sm' | 'md'; variant?: 'secondary' | 'ghost' }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(await text());
      setState('copied');
    } catch {
      setState('failed');
    }
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setState('idle'), 2000);
  };
  return (
    <Button size={size} variant={variant} onClick={copy}>
      {state === 'copied' ? <IconCheck /> : <IconCopy />}
      <span>{state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed' : label}</span>
      <span class="sr-only" aria-live="polite">{state === 'copied' ? 'Copied to the clipboard' : state === 'failed' ? 'Could not copy' : ''}</span>
    </Button>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner spinner-lg" aria-hidden="true" />
      <span>{label}…</span>
    </div>
  );
}

/** A page-wide message region: toasts after save/delete, announced politely. */
export function Toast({ message, onDone }: { message: string | null; onDone: () => void }) {
  useEffect(() => {
    if (!message) return;
    const t = window.setTimeout(onDone, 5000);
    return () => window.clearTimeout(t);
  }, [message]);
  return (
    <div class="toast-region" role="status" aria-live="polite">
      {message && (
        <div class="toast">
          <IconCheck />
          <span>{message}</span>
        </div>
      )}
    </div>
  );
}

/** Preformatted text that can be very long (response bodies): scrolls instead of stretching the page. */
export function CodeBlock({ text, label, empty = '(empty)' }: { text: string | null; label: string; empty?: string }) {
  if (text === null || text === '') return <p class="muted small">{empty}</p>;
  return (
    <pre class="code" tabIndex={0} aria-label={label}>
      <code>{text}</code>
    </pre>
  );
}

export function HeaderTable({ headers, caption }: { headers: Record<string, string> | null; caption: string }) {
  const entries = Object.entries(headers ?? {});
  if (!entries.length) return <p class="muted small">No headers recorded.</p>;
  return (
    <div class="table-scroll">
      <table class="kv-table">
        <caption class="sr-only">{caption}</caption>
        <tbody>
          {entries.map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td class={v === '[redacted]' ? 'muted' : ''}>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

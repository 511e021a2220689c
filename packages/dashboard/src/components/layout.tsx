import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Account, Session } from '../api';
import { paths } from '../router';
import { IconMenu, IconWebhook, IconX } from './icons';
import { Badge, Button, Link } from './ui';

/**
 * The operator's settings page shape: a header, a left settings navigation with Webhooks
 * under Integrations & Publishing, and the content. Entries other than Webhooks belong to
 * the operator's own product; here they are shown but inert.
 */

const NAV: Array<{ group: string; items: Array<{ label: string; active?: boolean }> }> = [
  { group: 'Account', items: [{ label: 'General' }, { label: 'Team members' }, { label: 'Billing' }] },
  {
    group: 'Integrations & Publishing',
    items: [{ label: 'Connected apps' }, { label: 'Publishing channels' }, { label: 'Webhooks', active: true }, { label: 'API keys' }],
  },
  { group: 'Security', items: [{ label: 'Audit log' }] },
];

const PLAN_LABEL: Record<Account['plan'], string> = { free: 'Free plan', pro: 'Pro plan', enterprise: 'Enterprise plan' };

export function Shell({ session, account, onSignOut, onSwitchAccount, children }: {
  session: Session;
  account: Account | null;
  onSignOut: () => void;
  onSwitchAccount?: () => void;
  children: ComponentChildren;
}) {
  const [menuOpen, setMenuOpen] = useState(false);
  return (
    <div class="app">
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="topbar">
        <div class="topbar-inner">
          <Button variant="ghost" size="sm" class="menu-toggle" aria-expanded={menuOpen ? 'true' : 'false'} aria-controls="settings-nav" onClick={() => setMenuOpen(!menuOpen)}>
            {menuOpen ? <IconX /> : <IconMenu />}
            <span class="sr-only">Settings menu</span>
          </Button>
          <Link href={paths.list()} class="brand" aria-label="Herald Webhooks home">
            <span class="brand-mark" aria-hidden="true"><IconWebhook /></span>
            <span class="brand-name">Herald</span>
          </Link>
          <div class="topbar-spacer" />
          {account && (
            <div class="account-chip" title={account.id}>
              <span class="avatar" aria-hidden="true">{(account.name.trim()[0] ?? '?').toUpperCase()}</span>
              <span class="account-chip-text">
                <span class="account-name">{account.name}</span>
                <span class="account-plan">{PLAN_LABEL[account.plan]}</span>
              </span>
            </div>
          )}
          {session.kind === 'admin' && (
            <>
              <Badge tone="warning">Operator</Badge>
              {onSwitchAccount && (
                <Button size="sm" variant="ghost" onClick={onSwitchAccount}>
                  Switch account
                </Button>
              )}
            </>
          )}
          <Button size="sm" variant="ghost" onClick={onSignOut}>
            Sign out
          </Button>
        </div>
      </header>
      <div class="layout">
        <nav id="settings-nav" class={`sidenav ${menuOpen ? 'is-open' : ''}`} aria-label="Settings">
          <p class="sidenav-title">Settings</p>
          {NAV.map((g) => (
            <div class="sidenav-group" key={g.group}>
              <p class="sidenav-group-title" id={`nav-${g.group.replace(/\W+/g, '-')}`}>{g.group}</p>
              <ul aria-labelledby={`nav-${g.group.replace(/\W+/g, '-')}`}>
                {g.items.map((i) =>
                  i.active ? (
                    <li key={i.label}>
                      <Link href={paths.list()} class="sidenav-link is-active" aria-current="page" onClick={() => setMenuOpen(false)}>
                        {i.label}
                      </Link>
                    </li>
                  ) : (
                    <li key={i.label}>
                      <span class="sidenav-link is-inert" aria-disabled="true">{i.label}</span>
                    </li>
                  ),
                )}
              </ul>
            </div>
          ))}
        </nav>
        <main id="main" class="content" tabIndex={-1}>
          {children}
        </main>
      </div>
    </div>
  );
}

export interface Crumb {
  label: string;
  href?: string;
}

/** Settings › Integrations & Publishing › Webhooks › … ; the last crumb is the current page. */
export function PageHeader({ crumbs, title, description, actions }: { crumbs: Crumb[]; title: ComponentChildren; description?: ComponentChildren; actions?: ComponentChildren }) {
  const all: Crumb[] = [{ label: 'Settings' }, { label: 'Integrations & Publishing' }, ...crumbs];
  return (
    <div class="page-header">
      <nav aria-label="Breadcrumb" class="breadcrumbs">
        <ol>
          {all.map((c, i) => (
            <li key={i}>
              {c.href && i < all.length - 1 ? <Link href={c.href}>{c.label}</Link> : <span aria-current={i === all.length - 1 ? 'page' : undefined}>{c.label}</span>}
            </li>
          ))}
        </ol>
      </nav>
      <div class="page-title-row">
        <div class="page-title-text">
          <h1 class="page-title">{title}</h1>
          {description && <p class="page-description">{description}</p>}
        </div>
        {actions && <div class="page-actions">{actions}</div>}
      </div>
    </div>
  );
}

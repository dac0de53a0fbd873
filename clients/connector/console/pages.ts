// The console's pages, rendered on the server. Every interpolated value is escaped unless it is
// markup this module built (the `html` tag); the only markup from elsewhere is the QR's SVG,
// which the qrcode library draws from paths only. Styles and the two small scripts (print, and
// a confirmation before revoke and recall) carry the response's CSP nonce; nothing is inline in
// attributes, so the policy needs no 'unsafe-inline'.
import { translate, type Language, type MessageKey } from './i18n.ts';
import type { DeviceRow, RecordRow, ShownInvitation } from './service.ts';
import type { Role, StaffMember } from './staff.ts';

export class Markup {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value instanceof Markup) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0]!;
  values.forEach((value, index) => (out += render(value) + strings[index + 1]!));
  return new Markup(out);
}

export interface PageContext {
  readonly lang: Language;
  readonly nonce: string;
  readonly path: string;
  readonly staff?: { readonly id: string; readonly role: Role };
  readonly csrf?: string;
  readonly flash?: string;
  readonly error?: string;
}

const STYLE = `
:root { --ink: #1b2a3a; --muted: #5b6b7b; --line: #d5dde5; --accent: #0b5cad; --bad: #a4262c; --ok: #1e7b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink); background: #f4f6f8; }
header { display: flex; align-items: center; gap: 1.5rem; padding: .75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
header nav { display: flex; gap: 1rem; flex: 1; }
header .who { color: var(--muted); font-size: .9rem; }
a { color: var(--accent); }
main { max-width: 60rem; margin: 1.5rem auto; padding: 0 1.5rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem 1.5rem; margin-bottom: 1.25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
input, select { font: inherit; padding: .45rem .6rem; border: 1px solid #9aa8b5; border-radius: 4px; min-width: 16rem; }
button { font: inherit; padding: .45rem 1rem; border: 0; border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; }
button.danger { background: var(--bad); }
button.quiet { background: #e7ecf1; color: var(--ink); }
form.inline { display: inline; margin: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
code { font-size: .85rem; white-space: nowrap; }
.flash { background: #e6f4ea; border: 1px solid #a8d5b5; color: var(--ok); padding: .6rem 1rem; border-radius: 6px; margin-bottom: 1rem; }
.error { background: #fbeaea; border: 1px solid #e3b3b5; color: var(--bad); padding: .6rem 1rem; border-radius: 6px; margin-bottom: 1rem; }
.status-active, .status-accepted { color: var(--ok); font-weight: 600; }
.status-revoked, .status-refused, .status-rejected, .status-recalled { color: var(--bad); font-weight: 600; }
.qr { display: flex; gap: 2rem; align-items: flex-start; }
.qr svg { background: #fff; flex: none; }
.lang a { margin-left: .4rem; }
.muted { color: var(--muted); }
@media print {
  header, .no-print, .flash { display: none !important; }
  body { background: #fff; }
  section { border: 0; }
}
`;

const SCRIPT = `
for (const button of document.querySelectorAll('[data-print]')) button.addEventListener('click', () => window.print());
for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
}
`;

function page(context: PageContext, title: string, body: Markup): string {
  const t = (key: MessageKey, params?: Record<string, string>) => translate(context.lang, key, params);
  const other = context.lang === 'en' ? 'nl' : 'en';
  const header = context.staff
    ? html`<header>
        <h1>${t('app.title')}</h1>
        <nav>
          ${context.staff.role === 'front-desk' ? html`<a href="/">${t('nav.patient')}</a>` : ''}
          ${context.staff.role === 'ict-admin' ? html`<a href="/staff">${t('nav.staff')}</a>` : ''}
        </nav>
        <span class="who" data-testid="signed-in"
          >${t('app.signedInAs', {
            staff: context.staff.id,
            role: t(`role.${context.staff.role}`),
          })}</span
        >
        <span class="lang"
          >${t('app.language')}: <a href="?lang=${other}" hreflang="${other}">${other.toUpperCase()}</a></span
        >
        <form class="inline" method="post" action="/logout">
          <input type="hidden" name="csrf" value="${context.csrf ?? ''}" />
          <button class="quiet" type="submit">${t('app.signOut')}</button>
        </form>
      </header>`
    : html`<header>
        <h1>${t('app.title')}</h1>
        <nav></nav>
        <span class="lang"
          >${t('app.language')}: <a href="?lang=${other}" hreflang="${other}">${other.toUpperCase()}</a></span
        >
      </header>`;
  return `<!doctype html>${html`<html lang="${context.lang}">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="same-origin" />
      <title>${title} · ${t('app.title')}</title>
      <style nonce="${context.nonce}">
        ${new Markup(STYLE)}
      </style>
    </head>
    <body>
      ${header}
      <main>
        ${context.flash ? html`<p class="flash" role="status">${context.flash}</p>` : ''}
        ${context.error ? html`<p class="error" role="alert">${context.error}</p>` : ''} ${body}
      </main>
      <script nonce="${context.nonce}">
        ${new Markup(SCRIPT)};
      </script>
    </body>
  </html>`}`;
}

function tr(context: PageContext) {
  return (key: MessageKey, params?: Record<string, string>) => translate(context.lang, key, params);
}

function csrfField(context: PageContext): Markup {
  return html`<input type="hidden" name="csrf" value="${context.csrf ?? ''}" />`;
}

export function loginPage(context: PageContext, options: { loginToken: string; oidc: boolean }): string {
  const t = tr(context);
  return page(
    context,
    t('login.title'),
    html`<section>
      <h2>${t('login.title')}</h2>
      <form method="post" action="/login">
        <input type="hidden" name="login" value="${options.loginToken}" />
        <label for="staff">${t('login.staffId')}</label>
        <input id="staff" name="staff" autocomplete="username" required maxlength="64" autofocus />
        <label for="password">${t('login.password')}</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          maxlength="1024"
        />
        <p><button type="submit">${t('login.submit')}</button></p>
      </form>
      ${options.oidc ? html`<p><a href="/login/oidc" data-testid="oidc">${t('login.oidc')}</a></p>` : ''}
    </section>`,
  );
}

export function lookupPage(context: PageContext): string {
  const t = tr(context);
  return page(
    context,
    t('lookup.title'),
    html`<section>
      <h2>${t('lookup.title')}</h2>
      <form method="post" action="/patient">
        ${csrfField(context)}
        <label for="number">${t('lookup.number')}</label>
        <input
          id="number"
          name="number"
          required
          maxlength="64"
          autocomplete="off"
          inputmode="numeric"
          autofocus
        />
        <button type="submit">${t('lookup.submit')}</button>
      </form>
    </section>`,
  );
}

function time(iso: string, lang: Language): string {
  return new Date(iso).toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'Europe/Amsterdam',
  });
}

export function patientPage(
  context: PageContext,
  patientNumber: string,
  data: { devices: readonly DeviceRow[]; records: readonly RecordRow[] },
): string {
  const t = tr(context);
  const deviceStatus = (device: DeviceRow) =>
    device.status === 'refused'
      ? t('devices.status.refused', { code: device.code ?? '' })
      : t(`devices.status.${device.status}`);
  const recordStatus = (record: RecordRow) =>
    record.status === 'rejected'
      ? t('records.status.rejected', { code: record.code ?? '' })
      : t(`records.status.${record.status}`);
  const acknowledgement = (record: RecordRow) => {
    const ack = record.acknowledged;
    if (!ack) return '';
    const stored = t('records.acknowledged', { stored: String(ack.stored), of: String(ack.of) });
    return ack.failed > 0 ? `${stored}; ${t('records.ackFailed', { failed: String(ack.failed) })}` : stored;
  };
  return page(
    context,
    t('patient.title', { number: patientNumber }),
    html`<section>
        <h2 data-testid="patient">${t('patient.title', { number: patientNumber })}</h2>
        <p><a href="/">${t('patient.other')}</a></p>
      </section>
      <section>
        <h2>${t('invite.title')}</h2>
        <p class="muted">${t('invite.explain')}</p>
        <form method="post" action="/patient/invite">
          ${csrfField(context)}
          <button type="submit">${t('invite.submit')}</button>
        </form>
      </section>
      <section data-testid="devices">
        <h2>${t('devices.title')}</h2>
        ${
          data.devices.length === 0
            ? html`<p class="muted">${t('devices.none')}</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>${t('devices.device')}</th>
                    <th>${t('devices.status')}</th>
                    <th>${t('devices.paired')}</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>
                  ${data.devices.map(
                    (device) =>
                      html`<tr data-device="${device.deviceId}">
                        <td data-volatile><code>${device.deviceId}</code></td>
                        <td class="status-${device.status}" data-testid="device-status">
                          ${deviceStatus(device)}
                        </td>
                        <td data-volatile>${device.pairedAt ? time(device.pairedAt, context.lang) : ''}</td>
                        <td>
                          ${
                            device.status === 'revoked'
                              ? ''
                              : html`<form
                                  class="inline"
                                  method="post"
                                  action="/patient/revoke"
                                  data-confirm="${t('devices.revokeConfirm')}"
                                >
                                  ${csrfField(context)}
                                  <input type="hidden" name="device" value="${device.deviceId}" />
                                  <button class="danger" type="submit">${t('devices.revoke')}</button>
                                </form>`
                          }
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section data-testid="records">
        <h2>${t('records.title')}</h2>
        ${
          data.records.length === 0
            ? html`<p class="muted">${t('records.none')}</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>${t('records.record')}</th>
                    <th>${t('records.file')}</th>
                    <th>${t('records.sentAt')}</th>
                    <th>${t('records.sentBy')}</th>
                    <th>${t('records.status')}</th>
                    <th>${t('records.acknowledgedColumn')}</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>
                  ${data.records.map(
                    (record) =>
                      html`<tr data-record="${record.recordId}">
                        <td data-volatile><code>${record.recordId}</code></td>
                        <td>${record.document}</td>
                        <td data-volatile>${time(record.sentAt, context.lang)}</td>
                        <td>${record.sentBy ?? ''}</td>
                        <td class="status-${record.status}" data-testid="record-status">
                          ${recordStatus(record)}
                        </td>
                        <td data-testid="record-acknowledged">${acknowledgement(record)}</td>
                        <td>
                          ${
                            record.status === 'accepted' || record.status === 'sent'
                              ? html`<form
                                  class="inline"
                                  method="post"
                                  action="/patient/recall"
                                  data-confirm="${t('records.recallConfirm')}"
                                >
                                  ${csrfField(context)}
                                  <input type="hidden" name="record" value="${record.recordId}" />
                                  <button class="danger" type="submit">${t('records.recall')}</button>
                                </form>`
                              : ''
                          }
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>`,
  );
}

export function invitationPage(
  context: PageContext,
  patientNumber: string,
  invitation: ShownInvitation,
): string {
  const t = tr(context);
  return page(
    context,
    t('invite.shown', { number: patientNumber }),
    html`<section>
      <h2>${t('invite.shown', { number: patientNumber })}</h2>
      <div class="qr">
        <div data-testid="qr">${new Markup(invitation.qrSvg)}</div>
        <div>
          <p>${t('invite.instructions')}</p>
          <p data-volatile>${t('invite.validUntil', { time: time(invitation.expiresAt, context.lang) })}</p>
          <p class="no-print">
            <button type="button" data-print>${t('invite.print')}</button>
            <a href="/patient">${t('invite.done')}</a>
          </p>
        </div>
      </div>
    </section>`,
  );
}

export function staffPage(context: PageContext, staff: readonly StaffMember[], oidc: boolean): string {
  const t = tr(context);
  return page(
    context,
    t('staff.title'),
    html`<section>
        <h2>${t('staff.title')}</h2>
        <table>
          <thead>
            <tr>
              <th>${t('staff.id')}</th>
              <th>${t('staff.name')}</th>
              <th>${t('staff.role')}</th>
              <th>${t('staff.signIn')}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${staff.map(
              (member) =>
                html`<tr data-staff="${member.id}">
                  <td><code>${member.id}</code></td>
                  <td>${member.name ?? ''}</td>
                  <td>${t(`role.${member.role}`)}</td>
                  <td>
                    ${[
                      member.password ? t('staff.signIn.password') : '',
                      member.oidcSubject ? `${t('staff.signIn.oidc')} (${member.oidcSubject})` : '',
                    ]
                      .filter(Boolean)
                      .join(', ')}
                  </td>
                  <td>
                    ${
                      member.id === context.staff?.id
                        ? ''
                        : html`<form
                            class="inline"
                            method="post"
                            action="/staff/remove"
                            data-confirm="${t('staff.removeConfirm')}"
                          >
                            ${csrfField(context)}
                            <input type="hidden" name="staff" value="${member.id}" />
                            <button class="danger" type="submit">${t('staff.remove')}</button>
                          </form>`
                    }
                  </td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section>
        <h2>${t('staff.add')}</h2>
        <form method="post" action="/staff/add">
          ${csrfField(context)}
          <label for="new-id">${t('staff.id')}</label>
          <input id="new-id" name="staff" required maxlength="64" autocomplete="off" />
          <label for="new-name">${t('staff.name')}</label>
          <input id="new-name" name="name" maxlength="200" autocomplete="off" />
          <label for="new-role">${t('staff.role')}</label>
          <select id="new-role" name="role">
            <option value="front-desk">${t('role.front-desk')}</option>
            <option value="ict-admin">${t('role.ict-admin')}</option>
          </select>
          <label for="new-password">${t('staff.password')}</label>
          <input
            id="new-password"
            name="password"
            type="password"
            maxlength="1024"
            autocomplete="new-password"
          />
          ${
            oidc
              ? html`<label for="new-subject">${t('staff.oidcSubject')}</label>
                  <input id="new-subject" name="oidcSubject" maxlength="256" autocomplete="off" />`
              : ''
          }
          <p><button type="submit">${t('staff.add')}</button></p>
        </form>
      </section>`,
  );
}

export function messagePage(context: PageContext, title: string, message: string, back = '/'): string {
  return page(
    context,
    title,
    html`<section>
      <h2>${title}</h2>
      <p data-testid="message">${message}</p>
      <p><a href="${back}">${translate(context.lang, 'error.back')}</a></p>
    </section>`,
  );
}

/** After the identity provider's redirect: a same-site navigation, so SameSite=Strict cookies go along. */
export function continuePage(context: PageContext): string {
  return `<!doctype html><html lang="${context.lang}"><head><meta charset="utf-8"><meta name="referrer" content="same-origin"><meta http-equiv="refresh" content="0;url=/"><title>${escapeHtml(translate(context.lang, 'app.title'))}</title></head><body><p><a href="/">${escapeHtml(translate(context.lang, 'login.submit'))}</a></p></body></html>`;
}

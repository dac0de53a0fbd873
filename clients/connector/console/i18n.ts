// The console's words in English and Dutch. Dutch is typed as a record over the English keys,
// so a missing translation does not compile; test/unit/console-i18n.test.ts also checks that
// each pair uses the same {placeholders}. Values are plain text: the pages escape them.

const en = {
  'app.title': 'Clinic Bridge front desk',
  'app.signedInAs': 'Signed in as {staff} ({role})',
  'app.signOut': 'Sign out',
  'app.language': 'Language',
  'nav.patient': 'Patient',
  'nav.staff': 'Staff accounts',
  'role.front-desk': 'front desk',
  'role.ict-admin': 'ICT administrator',
  'login.title': 'Sign in',
  'login.staffId': 'Staff account',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.oidc': 'Sign in with the hospital account',
  'login.failed': 'The account or the password is not right.',
  'login.rateLimited': 'Too many attempts. Wait a few minutes and try again.',
  'login.oidcFailed': 'Signing in with the hospital account did not work ({code}).',
  'login.expired': 'Your session ended. Sign in again.',
  'lookup.title': 'Look up a patient',
  'lookup.number': 'Patient number (BSN)',
  'lookup.submit': 'Look up',
  'lookup.invalid': 'That is not a valid patient number. Check it and try again.',
  'patient.title': 'Patient {number}',
  'patient.other': 'Another patient',
  'invite.title': 'Pair a phone',
  'invite.explain':
    'Creates a one-time QR code. The patient scans it with the Clinic Bridge app to pair their phone.',
  'invite.submit': 'Create invitation',
  'invite.shown': 'Invitation for patient {number}',
  'invite.instructions': 'Ask the patient to scan this code with the Clinic Bridge app. It works once.',
  'invite.validUntil': 'Valid until {time}.',
  'invite.print': 'Print',
  'invite.done': 'Done',
  'devices.title': 'Devices',
  'devices.none': 'The patient has no paired device.',
  'devices.device': 'Device',
  'devices.status': 'Status',
  'devices.paired': 'Paired',
  'devices.status.active': 'active',
  'devices.status.revoked': 'revoked',
  'devices.status.refused': 'refused ({code})',
  'devices.revoke': 'Revoke',
  'devices.revoked': 'Device {device} is revoked. Nothing more will be sent to it.',
  'devices.revokeConfirm': 'Revoke this device? It receives nothing more.',
  'records.title': 'Records sent',
  'records.none': 'Nothing has been sent to this patient from this connector.',
  'records.record': 'Record',
  'records.file': 'Document',
  'records.sentAt': 'Sent',
  'records.sentBy': 'By',
  'records.status': 'Delivery',
  'records.status.sent': 'waiting for the receipt',
  'records.status.accepted': 'delivered to the phone service',
  'records.status.rejected': 'rejected ({code})',
  'records.status.recalled': 'recalled',
  'records.recall': 'Recall',
  'records.recalled': 'Record {record} is recalled. A phone that already downloaded it keeps its copy.',
  'records.recallConfirm': 'Recall this record? Phones that have not downloaded it will not get it.',
  'staff.title': 'Staff accounts',
  'staff.id': 'Account',
  'staff.name': 'Name',
  'staff.role': 'Role',
  'staff.signIn': 'Sign-in',
  'staff.signIn.password': 'password',
  'staff.signIn.oidc': 'hospital account',
  'staff.add': 'Add account',
  'staff.password': 'Initial password (12 characters or more)',
  'staff.oidcSubject': 'Hospital account name (for sign-in with the hospital account)',
  'staff.remove': 'Remove',
  'staff.added': 'Account {staff} added.',
  'staff.removed': 'Account {staff} removed.',
  'error.title': 'Something went wrong',
  'error.forbidden': 'Your role does not allow this.',
  'error.notFound': 'There is no such page.',
  'error.csrf': 'The form was out of date. Go back, reload the page and try again.',
  'error.code': 'The action was refused ({code}).',
  'error.internal': 'An internal error occurred. Tell ICT the reference {ref}.',
  'error.back': 'Back',
} as const;

export type MessageKey = keyof typeof en;

const nl: Record<MessageKey, string> = {
  'app.title': 'Clinic Bridge balie',
  'app.signedInAs': 'Aangemeld als {staff} ({role})',
  'app.signOut': 'Afmelden',
  'app.language': 'Taal',
  'nav.patient': 'Patiënt',
  'nav.staff': 'Medewerkersaccounts',
  'role.front-desk': 'balie',
  'role.ict-admin': 'ICT-beheerder',
  'login.title': 'Aanmelden',
  'login.staffId': 'Medewerkersaccount',
  'login.password': 'Wachtwoord',
  'login.submit': 'Aanmelden',
  'login.oidc': 'Aanmelden met het ziekenhuisaccount',
  'login.failed': 'Het account of het wachtwoord klopt niet.',
  'login.rateLimited': 'Te veel pogingen. Wacht een paar minuten en probeer het opnieuw.',
  'login.oidcFailed': 'Aanmelden met het ziekenhuisaccount is niet gelukt ({code}).',
  'login.expired': 'Uw sessie is verlopen. Meld u opnieuw aan.',
  'lookup.title': 'Patiënt opzoeken',
  'lookup.number': 'Patiëntnummer (BSN)',
  'lookup.submit': 'Opzoeken',
  'lookup.invalid': 'Dat is geen geldig patiëntnummer. Controleer het en probeer het opnieuw.',
  'patient.title': 'Patiënt {number}',
  'patient.other': 'Andere patiënt',
  'invite.title': 'Telefoon koppelen',
  'invite.explain':
    'Maakt een eenmalige QR-code. De patiënt scant die met de Clinic Bridge-app om de telefoon te koppelen.',
  'invite.submit': 'Uitnodiging maken',
  'invite.shown': 'Uitnodiging voor patiënt {number}',
  'invite.instructions':
    'Vraag de patiënt deze code te scannen met de Clinic Bridge-app. Hij werkt één keer.',
  'invite.validUntil': 'Geldig tot {time}.',
  'invite.print': 'Afdrukken',
  'invite.done': 'Klaar',
  'devices.title': 'Apparaten',
  'devices.none': 'De patiënt heeft geen gekoppeld apparaat.',
  'devices.device': 'Apparaat',
  'devices.status': 'Status',
  'devices.paired': 'Gekoppeld',
  'devices.status.active': 'actief',
  'devices.status.revoked': 'ingetrokken',
  'devices.status.refused': 'geweigerd ({code})',
  'devices.revoke': 'Intrekken',
  'devices.revoked': 'Apparaat {device} is ingetrokken. Er wordt niets meer naartoe gestuurd.',
  'devices.revokeConfirm': 'Dit apparaat intrekken? Het ontvangt daarna niets meer.',
  'records.title': 'Verstuurde stukken',
  'records.none': 'Deze connector heeft nog niets naar deze patiënt gestuurd.',
  'records.record': 'Stuk',
  'records.file': 'Document',
  'records.sentAt': 'Verstuurd',
  'records.sentBy': 'Door',
  'records.status': 'Aflevering',
  'records.status.sent': 'wacht op ontvangstbewijs',
  'records.status.accepted': 'afgeleverd bij de telefoondienst',
  'records.status.rejected': 'geweigerd ({code})',
  'records.status.recalled': 'teruggeroepen',
  'records.recall': 'Terugroepen',
  'records.recalled':
    'Stuk {record} is teruggeroepen. Een telefoon die het al had gedownload, houdt zijn kopie.',
  'records.recallConfirm': 'Dit stuk terugroepen? Telefoons die het nog niet hebben, krijgen het niet meer.',
  'staff.title': 'Medewerkersaccounts',
  'staff.id': 'Account',
  'staff.name': 'Naam',
  'staff.role': 'Rol',
  'staff.signIn': 'Aanmelden',
  'staff.signIn.password': 'wachtwoord',
  'staff.signIn.oidc': 'ziekenhuisaccount',
  'staff.add': 'Account toevoegen',
  'staff.password': 'Eerste wachtwoord (12 tekens of meer)',
  'staff.oidcSubject': 'Naam van het ziekenhuisaccount (voor aanmelden met het ziekenhuisaccount)',
  'staff.remove': 'Verwijderen',
  'staff.added': 'Account {staff} toegevoegd.',
  'staff.removed': 'Account {staff} verwijderd.',
  'error.title': 'Er ging iets mis',
  'error.forbidden': 'Uw rol staat dit niet toe.',
  'error.notFound': 'Deze pagina bestaat niet.',
  'error.csrf': 'Het formulier was verouderd. Ga terug, laad de pagina opnieuw en probeer het nog eens.',
  'error.code': 'De actie is geweigerd ({code}).',
  'error.internal': 'Er is een interne fout opgetreden. Geef ICT het kenmerk {ref}.',
  'error.back': 'Terug',
};

export const LANGUAGES = ['en', 'nl'] as const;
export type Language = (typeof LANGUAGES)[number];

export const CATALOGUES: Readonly<Record<Language, Readonly<Record<MessageKey, string>>>> = { en, nl };

/** The message in `lang` with each {name} replaced; an unknown placeholder stays visible. */
export function translate(
  lang: Language,
  key: MessageKey,
  params: Readonly<Record<string, string>> = {},
): string {
  return CATALOGUES[lang][key].replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole);
}

/** The first supported language in an Accept-Language header, else English. */
export function languageFrom(acceptLanguage: string | undefined): Language {
  for (const part of (acceptLanguage ?? '').split(',')) {
    const tag = part.split(';')[0]!.trim().toLowerCase().slice(0, 2);
    if ((LANGUAGES as readonly string[]).includes(tag)) return tag as Language;
  }
  return 'en';
}

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (LANGUAGES as readonly string[]).includes(value);
}

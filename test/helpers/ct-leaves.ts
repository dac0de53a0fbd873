// The Certificate Transparency reference leaves (hex): the inputs whose tree roots and proofs other
// RFC 6962 implementations publish, so our tree can be checked against theirs.
export const CT_LEAF_DATA: readonly string[] = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
];

import type { JSX } from 'preact';

/** Line icons drawn on a 20×20 grid; decorative (aria-hidden), the text beside them carries the meaning. */
type P = { class?: string };
const Svg = (props: P & { children: JSX.Element | JSX.Element[] }) => (
  <svg class={`icon ${props.class ?? ''}`} viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
    {props.children}
  </svg>
);

export const IconCheck = (p: P) => <Svg {...p}><path d="M4.5 10.5l3.5 3.5 7.5-8" /></Svg>;
export const IconX = (p: P) => <Svg {...p}><path d="M5.5 5.5l9 9M14.5 5.5l-9 9" /></Svg>;
export const IconAlert = (p: P) => (
  <Svg {...p}>
    <path d="M10 3.2l7.2 12.6H2.8L10 3.2z" />
    <path d="M10 8.2v3.4M10 14.1v.1" />
  </Svg>
);
export const IconInfo = (p: P) => (
  <Svg {...p}>
    <circle cx="10" cy="10" r="7.2" />
    <path d="M10 9.2v4.6M10 6.4v.1" />
  </Svg>
);
export const IconCopy = (p: P) => (
  <Svg {...p}>
    <rect x="7" y="7" width="9.5" height="9.5" rx="2" />
    <path d="M13 7V5.2A1.7 1.7 0 0011.3 3.5H5.2A1.7 1.7 0 003.5 5.2v6.1A1.7 1.7 0 005.2 13H7" />
  </Svg>
);
export const IconEye = (p: P) => (
  <Svg {...p}>
    <path d="M1.8 10S4.8 4.5 10 4.5 18.2 10 18.2 10 15.2 15.5 10 15.5 1.8 10 1.8 10z" />
    <circle cx="10" cy="10" r="2.5" />
  </Svg>
);
export const IconEyeOff = (p: P) => (
  <Svg {...p}>
    <path d="M3 3l14 14M8.2 4.8A8.6 8.6 0 0110 4.5c5.2 0 8.2 5.5 8.2 5.5a14 14 0 01-2.4 3M12.6 15a8 8 0 01-2.6.5C4.8 15.5 1.8 10 1.8 10a14.6 14.6 0 013.4-3.9" />
    <path d="M8.2 8.3a2.5 2.5 0 003.5 3.5" />
  </Svg>
);
export const IconRefresh = (p: P) => (
  <Svg {...p}>
    <path d="M16.5 10a6.5 6.5 0 11-1.9-4.6" />
    <path d="M16.5 3.5v3.8h-3.8" />
  </Svg>
);
export const IconPlus = (p: P) => <Svg {...p}><path d="M10 4v12M4 10h12" /></Svg>;
export const IconTrash = (p: P) => (
  <Svg {...p}>
    <path d="M3.5 5.5h13M8 5.5V4h4v1.5M5.2 5.5l.8 10.5a1.5 1.5 0 001.5 1.4h5a1.5 1.5 0 001.5-1.4l.8-10.5" />
  </Svg>
);
export const IconChevronRight = (p: P) => <Svg {...p}><path d="M8 5l5 5-5 5" /></Svg>;
export const IconClock = (p: P) => (
  <Svg {...p}>
    <circle cx="10" cy="10" r="7.2" />
    <path d="M10 6v4.3l2.8 1.7" />
  </Svg>
);
export const IconShield = (p: P) => (
  <Svg {...p}>
    <path d="M10 2.8l6 2.4v4.3c0 3.8-2.6 6.6-6 7.7-3.4-1.1-6-3.9-6-7.7V5.2l6-2.4z" />
    <path d="M7.4 10l1.9 1.9 3.4-3.6" />
  </Svg>
);
export const IconGlobe = (p: P) => (
  <Svg {...p}>
    <circle cx="10" cy="10" r="7.2" />
    <path d="M2.8 10h14.4M10 2.8c2 2 3 4.4 3 7.2s-1 5.2-3 7.2c-2-2-3-4.4-3-7.2s1-5.2 3-7.2z" />
  </Svg>
);
export const IconSend = (p: P) => (
  <Svg {...p}>
    <path d="M17.2 2.8L8.6 11.4M17.2 2.8l-5.4 14.4-3.2-5.8-5.8-3.2 14.4-5.4z" />
  </Svg>
);
export const IconHistory = (p: P) => (
  <Svg {...p}>
    <path d="M3 10a7 7 0 102.1-5" />
    <path d="M3 3.5V7h3.5M10 6.5v3.8l2.5 1.5" />
  </Svg>
);
export const IconPencil = (p: P) => (
  <Svg {...p}>
    <path d="M12.8 3.8l3.4 3.4-9.3 9.3H3.5v-3.4l9.3-9.3z" />
  </Svg>
);
export const IconLock = (p: P) => (
  <Svg {...p}>
    <rect x="4" y="8.5" width="12" height="8.5" rx="2" />
    <path d="M6.8 8.5V6.2a3.2 3.2 0 016.4 0v2.3" />
  </Svg>
);
export const IconMenu = (p: P) => <Svg {...p}><path d="M3.5 6h13M3.5 10h13M3.5 14h13" /></Svg>;
export const IconWebhook = (p: P) => (
  <Svg {...p}>
    <circle cx="5.5" cy="14" r="2" />
    <circle cx="14.5" cy="14" r="2" />
    <circle cx="10" cy="5.5" r="2" />
    <path d="M9 7.3L6.3 12.2M11 7.3l2.7 4.9M7.5 14h5" />
  </Svg>
);
export const IconSparkle = (p: P) => (
  <Svg {...p}>
    <path d="M10 3v3M10 14v3M3 10h3M14 10h3M5.2 5.2l2 2M12.8 12.8l2 2M5.2 14.8l2-2M12.8 7.2l2-2" />
  </Svg>
);

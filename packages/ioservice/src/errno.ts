// Errors cross the channel as `-errno` only; each side names them itself.
import { constants } from 'node:os';
import type { PosixCode } from '@polytropon/libservice';

export { codeOf } from '@polytropon/libservice';

export const errno = (code: PosixCode): number => constants.errno[code];

import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_SERVER_OPTIONS, MAIN_SCOPE, type ImageServerOptions } from '../../config/image-server-options.js';

/** Where a scope's title is kept, in its work folder (never served). */
export const SCOPE_FILE = 'scope.json';
export const MAX_TITLE_LENGTH = 80;
export const TITLE_RULE = `1 to ${MAX_TITLE_LENGTH} characters, no control characters`;

/** A title as given, trimmed, or undefined when it breaks {@link TITLE_RULE}. */
export function scopeTitle(value: unknown): string | undefined {
  if (typeof value !== 'string') {
    return undefined;
  }
  const title = value.trim();
  return title.length > 0 && [...title].length <= MAX_TITLE_LENGTH && !/[\u0000-\u001f\u007f-\u009f]/.test(title) ? title : undefined;
}

/**
 * The scope's display name (`POST /s/<id>/api/scope`), kept in `<work folder>/scope.json`
 * so it survives a restart. Without one, the scope's id is shown.
 */
@Injectable()
export class ScopeTitle implements OnModuleInit {
  private readonly logger = new Logger(ScopeTitle.name);
  private value: string | undefined;
  private readonly watchers = new Set<() => void>();

  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions) {}

  /** The id of this app's scope. */
  get scope(): string {
    return this.options.scopeId ?? MAIN_SCOPE;
  }

  /** The title set, or the scope's id. */
  get title(): string {
    return this.value ?? this.scope;
  }

  async onModuleInit(): Promise<void> {
    try {
      const saved: unknown = JSON.parse(await readFile(join(this.options.workFolder, SCOPE_FILE), 'utf8'));
      this.value = typeof saved === 'object' && saved !== null && 'title' in saved ? scopeTitle(saved.title) : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`${SCOPE_FILE} of scope "${this.scope}" is unreadable, the title is its id: ${(err as Error).message}`);
      }
    }
  }

  /** Sets (or with null clears) the title, on disk first. */
  async set(title: string | null): Promise<void> {
    const folder = this.options.workFolder;
    await mkdir(folder, { recursive: true });
    const temp = join(folder, `.${SCOPE_FILE}.${randomBytes(4).toString('hex')}`);
    await writeFile(temp, JSON.stringify({ title }));
    await rename(temp, join(folder, SCOPE_FILE));
    this.value = title ?? undefined;
    for (const listener of this.watchers) {
      listener();
    }
  }

  /** Calls `listener` after each change of the title; returns the function that stops it. */
  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }
}

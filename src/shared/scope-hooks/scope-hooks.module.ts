import { Module } from '@nestjs/common';
import { ScopeHooks } from './scope-hooks.js';
import { ScopeTitle } from './scope-title.js';

/** {@link ScopeHooks} and the scope's {@link ScopeTitle}, one each per app, for the modules below the scopes module. */
@Module({ providers: [ScopeHooks, ScopeTitle], exports: [ScopeHooks, ScopeTitle] })
export class ScopeHooksModule {}

// Deployment entry point: Cloud Run functions loads this file and calls the "sequencer" target.
import { contextFromEnvironment, registerFunction } from '../../shared/runtime/function.ts';
import { definition } from './function.ts';

registerFunction(definition, contextFromEnvironment(definition.name));

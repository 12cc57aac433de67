// Worker entry: registers tsx's loader in this thread, then runs the TypeScript shard worker.
import { register } from 'tsx/esm/api';

register();
await import('./shard-worker.ts');

// The execution providers the engine knows, below both the graph forms and the runtime that
// picks one (the forms choose fused operators per provider; the runtime chooses the provider).
export const providers = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type ProviderChoice = (typeof providers)[number];
export type Provider = Exclude<ProviderChoice, 'auto'>;

export async function appCommand(args: string[]): Promise<number> { void args; return 2 }

// Everyday English words (and words common in image prompts) that the tiny model's BPE vocabulary
// is trained on besides the shape world's captions, so ordinary prompts split into sensible pieces.
export const COMMON_WORDS: readonly string[] = `
a an the this that these those it its is are was were be been being have has had do does did
and or but not no yes if then than so as of in on at by for with from to into onto over under
above below between behind beside near far up down left right top bottom middle center centre
front back inside outside around through across along against without within
i you he she we they me him her us them my your his our their mine yours
one two three four five six seven eight nine ten first second third many much more most few
some any all each every other another same different small large big little tiny huge long short
tall wide narrow thick thin round flat sharp soft hard smooth rough bright dark light heavy
red green blue yellow purple orange white black pink brown gray grey gold silver cyan magenta
violet colour color colors colours colored coloured shade tone hue
circle circles square squares triangle triangles star stars shape shapes dot dots line lines
ring disk disc box rectangle oval diamond heart cross point points edge edges corner corners
background foreground object objects pattern texture surface plain solid simple single double
photo photograph picture image painting drawing sketch illustration render art artwork style
portrait landscape scene view close closeup detailed detail high quality low best masterpiece
realistic photorealistic cartoon anime digital oil watercolor watercolour pencil ink
man woman person people child boy girl face eyes hair hand hands body dog cat bird horse fish
tree trees flower flowers grass leaf forest mountain river lake sea ocean beach sky cloud clouds
sun moon night day morning evening sunset sunrise rain snow fire water stone rock sand wood
house home city street road car train boat window door wall room table chair bed book cup
food apple bread cake fruit glass metal paper cloth
make made see saw look looks looking show shows shown draw drawn paint painted take taken
go goes went come came get got give gave put set sit stand standing sitting walk walking run
running hold holding wear wearing play playing fly flying swim swimming
new old young good bad great beautiful pretty cute ugly happy sad calm quiet loud warm cold
hot cool fresh clean dirty empty full open closed real fake natural strange
very really quite too also just only still even again always never often here there where
when why how what which who whom whose while before after during since until
time year years today tomorrow yesterday world life work place thing things way part
word words name trigger token tokens prompt caption text number numbers
`.split(/\s+/).filter((w) => w.length > 0);
